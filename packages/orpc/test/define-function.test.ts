/** defineFunction refuses a bad definition in the app, naming the function and the option. */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { StandardSchemaV1 } from '@ratchet/core'
import { defineFunction } from '@ratchet/orpc/functions'

const input = z.object({ n: z.number() })
const run = () => 1

describe('defineFunction', () => {
  it('puts the id, mode, budget, options and JSON Schemas in the manifest', () => {
    const fn = defineFunction({ id: 'f', input, output: z.number(), mode: 'isolated', timeoutMs: 5_000, run })
    expect(JSON.parse(JSON.stringify(fn.manifest))).toEqual({
      id: 'f',
      mode: 'isolated',
      maxInvocationMs: 10_000,
      timeoutMs: 5_000,
      input: expect.objectContaining({ type: 'object', required: ['n'] }) as unknown,
      output: expect.objectContaining({ type: 'number' }) as unknown,
    })
  })

  it.each([
    [{ id: '1-bad' }, /id must match/],
    [{ mode: 'parallel' }, /defineFunction "f": mode must be isolated or sequential/],
    [{ maxInvocationMs: 0 }, /defineFunction "f": maxInvocationMs must be a positive/],
    [{ timeoutMs: -1 }, /defineFunction: task "f": timeoutMs/],
    [{ retry: { maxAttempts: 0 } }, /defineFunction: task "f": retry/],
    [{ priority: 1.5 }, /defineFunction: task "f": priority/],
  ])('refuses %j', (bad, message) => {
    expect(() => defineFunction({ id: 'f', input, run, ...(bad as object) })).toThrow(message)
  })

  it('refuses an input schema without a JSON Schema', () => {
    const opaque: StandardSchemaV1<{ n: number }> = {
      '~standard': {
        version: 1,
        vendor: 'hand-made',
        validate: (value) => ({ value: value as { n: number } }),
      },
    }
    expect(() => defineFunction({ id: 'f', input: opaque, run })).toThrow(
      /defineFunction "f": the input schema has no JSON Schema/,
    )
  })
})
