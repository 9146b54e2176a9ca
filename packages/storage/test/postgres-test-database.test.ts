import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import pg from 'pg'
import { describe, expect, it, vi } from 'vitest'
import {
  anyFailed,
  createPostgresTestDatabase,
  probePostgres,
  RATCHET_TABLES,
  redact,
  skipLine,
  usePostgresTestDatabase,
} from '@ratchet/storage/testing'

const MIGRATIONS = fileURLToPath(new URL('../migrations/postgres', import.meta.url))
const MIGRATION_COUNT = (
  JSON.parse(readFileSync(join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
).entries.length

const db = await usePostgresTestDatabase()

describe('the PostgreSQL test harness, without a server', () => {
  it('an unreachable server is reported with its URL (password masked) and the cause', async () => {
    const url = 'postgres://postgres:secret@127.0.0.1:1/postgres'
    const probe = await probePostgres(url, 1_000)
    expect(probe).toEqual({ reachable: false, error: expect.stringContaining('ECONNREFUSED') as string })
    const line = skipLine(url, (probe as { error: string }).error)
    expect(line).toMatch(
      /^PostgreSQL tests skipped: postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres unreachable \(.*ECONNREFUSED.*\); start it or set RATCHET_TEST_PG_URL$/,
    )
    expect(line).not.toContain('secret')
    expect(redact('postgres://postgres@host/db')).toBe('postgres://postgres@host/db')
  })

  it('a file counts as failed when any test or hook below it failed', () => {
    const pass = { result: { state: 'pass' } }
    expect(anyFailed({ tasks: [pass, { tasks: [pass, { result: { state: 'skip' } }] }] })).toBe(false)
    expect(anyFailed({ tasks: [pass, { tasks: [pass, { result: { state: 'fail' } }] }] })).toBe(true)
    // A failed beforeAll marks the suite itself.
    expect(anyFailed({ result: { state: 'fail' }, tasks: [{ result: { state: 'skip' } }] })).toBe(true)
  })

  it('reset empties exactly the tables of the PostgreSQL schema', () => {
    expect(RATCHET_TABLES).toEqual([
      'events',
      'execution_history',
      'execution_signals',
      'execution_steps',
      'executions',
      'task_queues',
    ])
  })
})

describe.skipIf(!db.available)('the PostgreSQL test harness', () => {
  it("gives the file its own new database, named ratchet_t_<random>, and that database's URL", async () => {
    expect(db.name).toMatch(/^ratchet_t_[0-9a-f]{12}$/)
    expect(new URL(db.url).pathname).toBe(`/${db.name}`)
    expect(await db.query('SELECT current_database() AS name')).toEqual([{ name: db.name }])
    expect(await db.query(`SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`)).toEqual([
      { n: 0 },
    ])
  })

  it('reset empties every Ratchet table and restarts their identities', async () => {
    // Before the migrations there is nothing to empty.
    await db.reset()
    const pool = new pg.Pool({ connectionString: db.url, max: 1 })
    try {
      await migrate(drizzle({ client: pool }), { migrationsFolder: MIGRATIONS })
    } finally {
      await pool.end()
    }
    const fill = async () => {
      await db.query(
        `INSERT INTO execution_signals (execution_id, name, payload, created_at)
         VALUES (gen_random_uuid(), 'a', '1', 1), (gen_random_uuid(), 'b', '2', 2)`,
      )
      await db.query(
        `INSERT INTO execution_history (execution_id, at, to_status, attempt) VALUES (gen_random_uuid(), 1, 'queued', 0)`,
      )
      await db.query(
        `INSERT INTO events (id, type, payload, created_at, execution_ids) VALUES (gen_random_uuid(), 't', '{}', 1, '[]')`,
      )
      return db.query<{ seq: number }>(`SELECT seq FROM execution_signals ORDER BY seq`)
    }
    expect(await fill()).toEqual([{ seq: 1 }, { seq: 2 }])
    await db.reset()
    for (const table of RATCHET_TABLES)
      expect(await db.query(`SELECT count(*) AS n FROM ${table}`), table).toEqual([{ n: 0 }])
    // int8 columns are numbers, and the identities start at 1 again.
    expect(await fill()).toEqual([{ seq: 1 }, { seq: 2 }])
    // The migrations stay applied.
    expect(await db.query(`SELECT count(*) AS n FROM drizzle.__drizzle_migrations`)).toEqual([
      { n: MIGRATION_COUNT },
    ])
  })

  it('finish drops a database when its file passed and keeps it (printing its name) when a test failed', async () => {
    const exists = async (name: string) =>
      (await db.query<{ n: number }>(`SELECT count(*) AS n FROM pg_database WHERE datname = $1`, [name]))[0]!
        .n === 1
    const passed = await createPostgresTestDatabase()
    // A connection the test left open does not stop the drop.
    const leaked = new pg.Client({ connectionString: passed.url })
    leaked.on('error', () => {})
    await leaked.connect()
    expect(await exists(passed.name)).toBe(true)
    await passed.finish({ keep: false })
    expect(await exists(passed.name)).toBe(false)
    await leaked.end().catch(() => {})

    const failed = await createPostgresTestDatabase()
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await failed.finish({ keep: true })
      expect(warn).toHaveBeenCalledWith(
        expect.stringContaining(`kept PostgreSQL test database ${failed.name}`),
      )
    } finally {
      warn.mockRestore()
    }
    expect(await exists(failed.name)).toBe(true)
    // Ours to clean up: this test passed.
    await db.query(`DROP DATABASE ${pg.escapeIdentifier(failed.name)}`)
  })
})
