/**
 * The `ratchet` CLI as a user runs it: a real process (from the sources, as `npm run dev`
 * does; the consumer test runs the packed, compiled one), a real SQLite file, real HTTP.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { SQLITE_MIGRATIONS_FOLDER } from '@ratchet/storage'
import { killChildServers, startChildServer } from './child-server'
import { ratchet } from './cli-run'
import type { tasks } from './fixtures/tasks'
import { API_KEY } from './helpers'

const TASKS = join(import.meta.dirname, 'fixtures/tasks.ts')

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-cli-'))
})
afterEach(async () => {
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

describe('ratchet start', () => {
  it('--tasks runs that module, over RATCHET_TASKS, and serves it until SIGTERM', async () => {
    const server = await startChildServer({
      databaseFile: join(dir, 'ratchet.db'),
      // The variable names a module that does not exist: the flag must win.
      tasksModule: join(dir, 'missing-tasks.ts'),
      env: { RATCHET_API_KEYS: `cli:${API_KEY}` },
      cli: ['start', '--tasks', TASKS, '--port', '0', '--log-level', 'info'],
    })
    const listening = server.logs.find((entry) => entry.msg === 'ratchet server listening')
    expect(listening?.tasks).toEqual([
      'echo',
      'flaky',
      'always-fails',
      'declined',
      'slow',
      'blob',
      'configure',
      'sync-account',
    ])

    const client = createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.echo.enqueue({ message: 'hi' })
    expect(await client.executions.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: { echoed: 'hi' },
    })

    server.process.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    expect(server.stdout()).toContain('ratchet server stopped')
  })

  it('reads RATCHET_TASKS when --tasks is not given', async () => {
    const server = await startChildServer({
      databaseFile: join(dir, 'ratchet.db'),
      tasksModule: TASKS,
      cli: ['start'],
    })
    const listening = server.logs.find((entry) => entry.msg === 'ratchet server listening')
    expect(listening?.tasks).toContain('echo')
  })

  it('exits 1 with a message naming the flag and the module that cannot load', async () => {
    const missing = join(dir, 'nope.ts')
    const result = await ratchet(['start', '--tasks', missing, '--port', '0'], {
      DATABASE_URL: `file:${join(dir, 'ratchet.db')}`,
    })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`ratchet: tasks module "${missing}": no such file (${missing})`)
    const folder = await ratchet(['start', '--tasks', dir, '--port', '0'], {
      DATABASE_URL: `file:${join(dir, 'ratchet.db')}`,
    })
    expect(folder.code).toBe(1)
    expect(folder.stderr).toContain(
      `ratchet: tasks module "${dir}" is a folder; give the file that exports your tasks`,
    )
    const bad = await ratchet(['start', '--port', '-1'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('--port (PORT) must be an integer from 0 to 65535, got "-1"')
  })
})

describe('ratchet migrate', () => {
  it('creates and migrates the database, and refuses while a server uses it', async () => {
    const file = join(dir, 'data', 'ratchet.db')
    const migrated = await ratchet(['migrate', '--database-url', `file:${file}`])
    expect(migrated).toMatchObject({ code: 0, stdout: `ratchet: ${file} is migrated\n` })
    const db = new Database(file, { readonly: true })
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()
    const applied = db.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get()
    db.close()
    expect(tables).toEqual(expect.arrayContaining(['executions', 'execution_history', 'execution_steps']))
    const shipped = readdirSync(SQLITE_MIGRATIONS_FOLDER).filter((name) => name.endsWith('.sql'))
    expect(applied).toBe(shipped.length)
    expect(existsSync(`${file}.lock`)).toBe(true)

    await startChildServer({ databaseFile: file, tasksModule: TASKS })
    const refused = await ratchet(['migrate', '--database-url', `file:${file}`])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/ratchet: another Ratchet server is using .*ratchet\.db/)
  })
})
