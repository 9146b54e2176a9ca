/**
 * The client shares its error classes with the engine (`@ratchet/core/errors`) but must not take
 * the engine with it into a browser or edge bundle.
 */
import { resolve } from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

describe('a browser bundle of @ratchet/client', () => {
  it('holds the shared error classes, and no engine code and no node: import', async () => {
    const result = await build({
      entryPoints: [resolve(import.meta.dirname, '../src/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      // The sources, as everywhere in the repo (the packed bundle is checked by test:consumer).
      conditions: ['@ratchet/source'],
      logLevel: 'silent',
    })
    const inputs = Object.keys(result.metafile.inputs)
    expect(inputs).toContain('packages/core/src/errors.ts')
    expect(inputs.filter((path) => path.startsWith('packages/core/'))).toEqual([
      'packages/core/src/errors.ts',
    ])
    const code = result.outputFiles[0]!.text
    expect(code).not.toMatch(/from ["']node:/)
    expect(code).toMatch(/WaitTimeoutError = class extends RatchetError/)
  })
})
