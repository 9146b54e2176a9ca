/**
 * `npm test` fails when either dialect's drizzle schema and its committed migrations disagree:
 * scripts/check-migrations.mjs (also `npm run db:check`) generates each dialect's migrations
 * into a scratch copy and requires drizzle-kit to find nothing to add.
 */
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '../../..')

it('the SQLite and PostgreSQL migrations match their schemas', { timeout: 120_000 }, async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['scripts/check-migrations.mjs'], {
    cwd: ROOT,
    encoding: 'utf8',
  }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`schema and migrations disagree:\n${error.stdout ?? ''}${error.stderr ?? ''}`)
  })
  expect(stdout).toContain('sqlite: migrations match the schema')
  expect(stdout).toContain('postgresql: migrations match the schema')
})
