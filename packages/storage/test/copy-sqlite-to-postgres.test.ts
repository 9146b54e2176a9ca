/**
 * The SQLite → PostgreSQL copy (`ratchet copy-sqlite`), on a real SQLite file and a real
 * PostgreSQL database: every kind of row copied column for column (raw SELECTs and the two
 * adapters' port reads agree), fresh seqs afterwards, and every refusal leaving PostgreSQL as
 * it was.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Client } from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { task, type Storage } from '@ratchet/core'
import { createTestEngine } from '@ratchet/testing'
import {
  acquireProcessLock,
  copySqliteToPostgres,
  CopyRefusedError,
  DatabaseInUseError,
  openPostgresStorage,
  openSqliteStorage,
  type CopyProgress,
  type CopyStage,
} from '@ratchet/storage'
import { RATCHET_TABLES, usePostgresTestDatabase } from '@ratchet/storage/testing'
import { copiedTables } from '../src/copy/tables'

const pg = await usePostgresTestDatabase()

const HOUR = 3_600_000

const quick = task({
  id: 'quick',
  input: z.object({ n: z.number() }),
  run: ({ n }) => ({ doubled: n * 2, text: 'é ✓ "quoted" \\ back\nslash 😀' }),
})
const broken = task({
  id: 'broken',
  input: z.object({}),
  retry: { maxAttempts: 2, backoff: { initialMs: 10, factor: 1, maxMs: 10 } },
  run: () => {
    throw new Error('card declined', { cause: new Error('issuer said no') })
  },
})
const sleeper = task({
  id: 'sleeper',
  input: z.object({}),
  run: async (_input, ctx) => {
    await ctx.step('before', () => 1)
    await ctx.sleep('nap', HOUR)
    return ctx.step('after', () => 2)
  },
})
const waiter = task({
  id: 'waiter',
  input: z.object({}),
  run: async (_input, ctx) => {
    await ctx.step('before', () => 'ready')
    return ctx.waitForSignal<{ ok: boolean }>('approve')
  },
})
const hooked = task({
  id: 'hooked',
  input: z.object({ key: z.string() }),
  run: async ({ key }, ctx) => ctx.waitForWakeup<{ paid: boolean }>('payment', { key }),
})
const child = task({
  id: 'child',
  input: z.object({ n: z.number() }),
  run: ({ n }) => n + 1,
})
const fanOut = task({
  id: 'fan-out',
  input: z.object({ width: z.number() }),
  run: async ({ width }, ctx) => {
    await ctx.step('plan', () => width)
    const results = await ctx.all(
      Array.from({ length: width }, (_, n) => ctx.child(`kid-${n}`, child, { n })),
    )
    return results.reduce((sum, value) => sum + value, 0)
  },
})
const onOrder = task({
  id: 'on-order',
  input: z.object({ type: z.literal('order.placed'), orderId: z.number() }),
  on: ['order.placed'],
  run: ({ orderId }) => orderId,
})
const tasks = { quick, broken, sleeper, waiter, hooked, child, fanOut, onOrder }

/** Input text as no engine writes it (spacing, key order, escapes): the copy must keep it as it is. */
const ODD_JSON = '{ "z" : 1,"a":[1.0, 2e3], "s":"\\u00e9 é \\"q\\" 😀\\n" }'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-copy-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
/** A SQLite database holding every kind of row, as a stopped (or killed) server leaves it. */
type FixtureId =
  | 'completed'
  | 'failed'
  | 'fromEvent'
  | 'sleeping'
  | 'waiting'
  | 'hooked'
  | 'hookedDone'
  | 'cancelled'
  | 'scheduled'
  | 'parent'
  | 'odd'
  | 'running'

async function fixture(): Promise<{ file: string; ids: Record<FixtureId, string>; now: number }> {
  const file = join(dir, `ratchet-${++files}.db`)
  const t = await createTestEngine({ tasks, filename: file })
  const ids = {} as Record<FixtureId, string>
  try {
    ids.completed = (await t.run(quick, { n: 21 }, { idempotencyKey: 'invoice-7' })).id
    ids.failed = (await t.run(broken, {})).id
    const published = await t.engine.publish({ type: 'order.placed', orderId: 42 }, { id: 'publish-1' })
    ids.fromEvent = published.executions[0]!.executionId
    await t.runUntilSettled(ids.fromEvent)
    await t.engine.publish({ type: 'nobody.listens', x: [1, 2] })
    ids.sleeping = (await t.run(sleeper, {}, { until: t.now() })).id
    ids.waiting = (await t.run(waiter, {}, { until: t.now() })).id
    // A signal nobody waits for stays in the inbox; the waiter runs again and parks again.
    await t.signal(ids.waiting, 'note', { text: 'unconsumed' })
    await t.runUntilSettled(ids.waiting, { until: t.now() })
    ids.hooked = (await t.run(hooked, { key: 'order-42' }, { until: t.now() })).id
    ids.hookedDone = (await t.run(hooked, { key: 'order-41' }, { until: t.now() })).id
    await t.engine.wakeup('order-41', { output: { paid: true } })
    await t.runUntilSettled(ids.hookedDone)
    ids.cancelled = (await t.enqueue(quick, { n: 0 })).executionId
    await t.cancel(ids.cancelled)
    ids.scheduled = (await t.enqueue(quick, { n: 1 }, { delayMs: 24 * HOUR, priority: 5 })).executionId
    // The parent runs once: its children are enqueued and stay queued (no further tick).
    ids.parent = (await t.enqueue(fanOut, { width: 3 })).executionId
    expect((await t.tick()).claimed).toBe(1)
    ids.odd = (await t.enqueue(quick, { n: 2 })).executionId
    // A run of a server that was killed: claimed, never settled.
    ids.running = (await t.enqueue(quick, { n: 3 })).executionId
    const { claimed } = await t.storage.claim({
      owner: 'worker-killed',
      now: t.now(),
      leaseMs: 30_000,
      limit: 1,
      taskIds: ['quick'],
    })
    expect(claimed.map((row) => row.id)).toEqual([ids.odd])
    const { claimed: second } = await t.storage.claim({
      owner: 'worker-killed',
      now: t.now(),
      leaseMs: 30_000,
      limit: 1,
      taskIds: ['quick'],
    })
    expect(second.map((row) => row.id)).toEqual([ids.running])
    // An operator paused one queue, and paused and resumed another.
    await t.engine.pauseTask('broken')
    await t.engine.pauseTask('waiter')
    await t.engine.resumeTask('waiter')
    // Put `odd` back to queued by hand, with input text as no engine writes it.
    const now = t.now()
    await t.close()
    const db = new Database(file)
    db.prepare(
      "UPDATE executions SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, input = ? WHERE id = ?",
    ).run(ODD_JSON, ids.odd)
    db.close()
    return { file, ids, now }
  } catch (error) {
    await t.close().catch(() => {})
    throw error
  }
}

type Row = Record<string, unknown>

function keyOf(table: string, row: Row): string {
  if (table === 'execution_steps')
    return `${String(row.execution_id)}/${String(row.position).padStart(6, '0')}`
  return String(row.seq ?? row.id ?? row.task_id).padStart(40, '0')
}

const sortRows = (table: string, rows: Row[]) =>
  [...rows].sort((a, b) => (keyOf(table, a) < keyOf(table, b) ? -1 : 1))

function sqliteRows(file: string, table: string): Row[] {
  const db = new Database(file, { readonly: true })
  try {
    return sortRows(table, db.prepare(`SELECT * FROM "${table}"`).all() as Row[])
  } finally {
    db.close()
  }
}

async function postgresRows(table: string): Promise<Row[]> {
  const rows = await pg.query(`SELECT * FROM "${table}"`)
  return sortRows(
    table,
    rows.map(({ xid: _xid, ...row }) => row),
  )
}

async function counts(): Promise<Record<string, number>> {
  const result: Record<string, number> = {}
  for (const table of RATCHET_TABLES) {
    const exists = await pg.query<{ e: boolean }>('SELECT to_regclass($1) IS NOT NULL AS e', [table])
    result[table] = exists[0]!.e
      ? Number((await pg.query<{ n: number }>(`SELECT count(*) AS n FROM "${table}"`))[0]!.n)
      : -1
  }
  return result
}

const byTask = <T extends { taskId: string }>(rows: T[]) =>
  [...rows].sort((a, b) => (a.taskId < b.taskId ? -1 : 1))

const FAILURE = JSON.stringify({ name: 'Lost', message: 'lost', retryable: true })

describe('the copied tables', () => {
  it('are every table of both schemas, with the same columns', () => {
    const tables = copiedTables()
    expect(tables.map((t) => t.name).sort()).toEqual([...RATCHET_TABLES])
    expect(tables.find((t) => t.name === 'execution_steps')!.key).toEqual(['execution_id', 'position'])
    expect(tables.filter((t) => t.identity).map((t) => t.name)).toEqual([
      'execution_history',
      'execution_signals',
    ])
  })
})

describe.skipIf(!pg.available)('copySqliteToPostgres', () => {
  let storages: Storage[] = []
  beforeEach(async () => {
    await Promise.all(storages.map((s) => s.close()))
    storages = []
    await pg.reset()
  })
  afterAll(async () => {
    await Promise.all(storages.map((s) => s.close()))
  })

  it('copies every row column for column, and the port reads the same on both', async () => {
    const { file, ids, now } = await fixture()
    // Migrated beforehand, to compare the indexes the copy drops and builds again with the migrations' own.
    await (await openPostgresStorage({ url: pg.url })).close()
    const indexes = () =>
      pg.query(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
      )
    const migratedIndexes = await indexes()
    expect(migratedIndexes.length).toBeGreaterThan(20)
    const progress: CopyProgress[] = []
    const stages: CopyStage[] = []
    const report = await copySqliteToPostgres({
      sqliteFilename: file,
      postgresUrl: pg.url,
      batchRows: 3,
      onProgress: (p) => progress.push(p),
      onStage: (stage) => stages.push(stage),
    })

    expect(await indexes()).toEqual(migratedIndexes)
    expect(stages).toEqual(['indexing', 'verifying', 'committing', 'analyzing'])
    // Raw rows: every column of every table, value for value (xid aside: PostgreSQL's own).
    for (const table of RATCHET_TABLES) {
      const expected = sqliteRows(file, table)
      expect(expected.length, table).toBeGreaterThan(0)
      expect(await postgresRows(table), table).toEqual(expected)
    }
    expect(Object.fromEntries(report.tables.map((t) => [t.table, t.rows]))).toEqual(
      Object.fromEntries(RATCHET_TABLES.map((table) => [table, sqliteRows(file, table).length])),
    )
    expect(report.unfinished).toEqual({ queued: 5, waiting: 4, running: 1 })
    expect(report.lastLeaseExpiresAt).toBe(now + 30_000)
    expect(
      (await pg.query<{ input: string }>('SELECT input FROM executions WHERE id = $1', [ids.odd]))[0]!.input,
    ).toBe(ODD_JSON)
    // One transaction: every history row has the same xid.
    expect(await pg.query('SELECT DISTINCT xid::text FROM execution_history')).toHaveLength(1)
    // Progress in batches of 3, ending at each table's total.
    const history = progress.filter((p) => p.table === 'execution_history')
    expect(history.length).toBeGreaterThan(3)
    expect(history.at(-1)!.copied).toBe(history.at(-1)!.total)
    expect(history.map((p) => p.copied)).toEqual([...history.map((p) => p.copied)].sort((a, b) => a - b))

    // The port: both adapters read the same executions, history, steps, run state and events.
    const sqlite = openSqliteStorage({ filename: file })
    const postgres = await openPostgresStorage({ url: pg.url, leaseClock: 'caller' })
    storages.push(sqlite, postgres)
    const all = await sqlite.list({ limit: 1000 })
    expect(all.length).toBe(report.tables.find((t) => t.table === 'executions')!.rows)
    expect(await postgres.list({ limit: 1000 })).toEqual(all)
    expect(await postgres.taskQueues()).toEqual(await sqlite.taskQueues())
    expect((await sqlite.taskQueues()).filter((q) => q.pausedAt !== null).map((q) => q.taskId)).toEqual([
      'broken',
    ])
    for (const { id } of all) {
      expect(await postgres.get(id), id).toEqual(await sqlite.get(id))
      expect(await postgres.history(id), id).toEqual(await sqlite.history(id))
      expect(await postgres.steps(id, { limit: 1000 }), id).toEqual(await sqlite.steps(id, { limit: 1000 }))
      expect(await postgres.loadRunState(id), id).toEqual(await sqlite.loadRunState(id))
    }
    expect(await postgres.list({ limit: 10, idempotencyKey: 'invoice-7', taskId: 'quick' })).toEqual(
      await sqlite.list({ limit: 10, idempotencyKey: 'invoice-7', taskId: 'quick' }),
    )
    expect(await postgres.listEvents({ limit: 100 })).toEqual(await sqlite.listEvents({ limit: 100 }))
    // (Neither read promises an order of tasks.)
    expect(byTask(await postgres.taskStats(now))).toEqual(byTask(await sqlite.taskStats(now)))
    expect(byTask(await postgres.queueStats(now))).toEqual(byTask(await sqlite.queueStats(now)))
    expect(await postgres.nextDueAt(Object.values(tasks).map((t) => t.id))).toBe(
      await sqlite.nextDueAt(Object.values(tasks).map((t) => t.id)),
    )
    // The waiter's inbox still holds the unconsumed signal.
    expect((await postgres.loadRunState(ids.waiting)).inbox).toMatchObject([
      { name: 'note', consumedBy: null },
    ])
    // Every status change is in the change feed, after the empty cursor.
    const statusRows = (await pg.query('SELECT 1 FROM execution_history WHERE event = $1', ['status'])).length
    expect(await postgres.changesSince({ after: '', limit: 10_000 })).toHaveLength(statusRows)

    // New rows get fresh seqs past the copied ones.
    const maxSeq = (await pg.query<{ m: number }>('SELECT max(seq) AS m FROM execution_history'))[0]!.m
    const maxSignal = (await pg.query<{ m: number }>('SELECT max(seq) AS m FROM execution_signals'))[0]!.m
    const template = (await sqlite.get(ids.odd))!
    const [enqueued] = await postgres.enqueue([enqueuedInput(template, now)], now)
    expect(enqueued!.created).toBe(true)
    const [enqueuedHistory] = await postgres.history(enqueued!.row.id)
    expect(enqueuedHistory!.seq).toBe(maxSeq + 1)
    await postgres.signal(ids.waiting, 'approve', '{"ok":true}', now)
    const inbox = (await postgres.loadRunState(ids.waiting)).inbox
    expect(inbox.map((s) => s.name)).toEqual(['note', 'approve'])
    expect(inbox[1]!.seq).toBe(maxSignal + 1)
    // An idempotency key copied from SQLite still holds on PostgreSQL.
    const [again] = await postgres.enqueue(
      [
        {
          ...enqueuedInput(template, now),
          id: '0190b2a4-0000-7000-8000-000000000002',
          input: (await sqlite.get(ids.completed))!.input,
          idempotencyKey: 'invoice-7',
        },
      ],
      now,
    )
    expect(again).toMatchObject({ created: false, row: { id: ids.completed } })

    // The killed server's run: recovered on PostgreSQL once its lease has expired, not before.
    expect(
      await postgres.recoverLeases({
        now: now + 29_000,
        error: FAILURE,
        exhaustedError: () => FAILURE,
        limit: 10,
      }),
    ).toEqual([])
    const recovered = await postgres.recoverLeases({
      now: now + 30_001,
      error: FAILURE,
      exhaustedError: () => FAILURE,
      limit: 10,
    })
    expect(recovered.map((r) => r.id)).toEqual([ids.running])
    expect(await postgres.get(ids.running)).toMatchObject({ status: 'queued', leaseOwner: null })
  })

  it("copies what a killed server's last transactions left in the WAL", async () => {
    const { file, ids } = await fixture()
    // A process that commits into the WAL (no checkpoint) and dies by SIGKILL, as a server may.
    const script = `
      const Database = require('better-sqlite3')
      const db = new Database(process.argv[1])
      db.pragma('wal_autocheckpoint = 0')
      db.prepare('UPDATE executions SET priority = 7 WHERE id = ?').run(process.argv[2])
      process.kill(process.pid, 'SIGKILL')`
    const killed = spawnSync(process.execPath, ['-e', script, file, ids.scheduled], {
      cwd: import.meta.dirname,
    })
    expect(killed.signal).toBe('SIGKILL')
    expect(statSync(`${file}-wal`).size).toBeGreaterThan(0)
    await copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url })
    expect(await pg.query('SELECT priority FROM executions WHERE id = $1', [ids.scheduled])).toEqual([
      { priority: 7 },
    ])
  })

  it('refuses a PostgreSQL database that holds Ratchet rows, and leaves it as it was', async () => {
    const { file } = await fixture()
    await copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url })
    const before = await counts()
    const seqBefore = await pg.query("SELECT last_value FROM pg_sequences WHERE sequencename LIKE '%seq_seq'")
    const refused = await copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url }).catch(
      (e: unknown) => e,
    )
    expect(refused).toBeInstanceOf(CopyRefusedError)
    expect(refused).toMatchObject({ reason: 'target-not-empty' })
    const message = (refused as Error).message
    expect(message).toMatch(
      new RegExp(
        `PostgreSQL database "${pg.name}" on [^ ]+ is not empty: it holds executions \\(\\d+ rows\\)`,
      ),
    )
    expect(message).toContain('execution_history (')
    expect(message).toContain('events (')
    expect(await counts()).toEqual(before)
    expect(await pg.query("SELECT last_value FROM pg_sequences WHERE sequencename LIKE '%seq_seq'")).toEqual(
      seqBefore,
    )

    // One row is enough to refuse.
    await pg.reset()
    await pg.query(
      "INSERT INTO events (id, type, payload, created_at, execution_ids) VALUES ('0190b2a4-0000-7000-8000-000000000009', 't', '{}', 1, '[]')",
    )
    await expect(copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url })).rejects.toThrow(
      /is not empty: it holds events \(1 rows\)/,
    )
    expect((await counts()).executions).toBe(0)
  })

  it('refuses while a server holds the SQLite file, touching nothing', async () => {
    const { file } = await fixture()
    const lock = acquireProcessLock(file)
    try {
      const refused = await copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url }).catch(
        (e: unknown) => e,
      )
      expect(refused).toBeInstanceOf(DatabaseInUseError)
      expect((refused as Error).message).toContain(`another Ratchet server is using ${file}`)
    } finally {
      lock.release()
    }
    expect(Object.values(await counts()).every((n) => n <= 0)).toBe(true)
    // Released, the same copy goes through.
    await copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url })
    expect((await counts()).executions).toBeGreaterThan(0)
  })

  it('refuses a PostgreSQL database another session keeps its tables locked in', async () => {
    const { file } = await fixture()
    await (await openPostgresStorage({ url: pg.url })).close()
    const other = new Client({ connectionString: pg.url })
    await other.connect()
    try {
      await other.query('BEGIN')
      await other.query('SELECT count(*) FROM events')
      const refused = await copySqliteToPostgres({
        sqliteFilename: file,
        postgresUrl: pg.url,
        lockTimeoutMs: 200,
      }).catch((e: unknown) => e)
      expect(refused).toMatchObject({ reason: 'target-busy' })
      expect((refused as Error).message).toMatch(
        /another session kept the Ratchet tables of .* locked for 200 ms/,
      )
    } finally {
      await other.end()
    }
    expect(Object.values(await counts()).every((n) => n === 0)).toBe(true)
  })

  it('copies in one transaction: a value PostgreSQL cannot store late in the copy leaves every table empty', async () => {
    const { file, ids } = await fixture()
    const db = new Database(file)
    // Signals are copied after executions, history and steps: those were inserted, then rolled back.
    db.prepare("UPDATE execution_signals SET payload = '\"a' || char(0) || 'b\"' WHERE execution_id = ?").run(
      ids.waiting,
    )
    db.close()
    const refused = await copySqliteToPostgres({
      sqliteFilename: file,
      postgresUrl: pg.url,
      batchRows: 2,
    }).catch((e: unknown) => e)
    expect(refused).toMatchObject({ reason: 'row-not-copyable' })
    expect((refused as Error).message).toMatch(
      /^execution_signals \(seq=\d+\): payload: it contains a NUL character, which PostgreSQL text cannot hold; nothing was committed$/,
    )
    expect(Object.values(await counts()).every((n) => n === 0)).toBe(true)
  })

  it('refuses ids PostgreSQL would not store as they are', async () => {
    const { file, ids } = await fixture()
    const db = new Database(file)
    db.pragma('foreign_keys = OFF')
    db.prepare('UPDATE executions SET id = upper(id) WHERE id = ?').run(ids.completed)
    db.close()
    await expect(copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url })).rejects.toThrow(
      `executions (id=${ids.completed.toUpperCase()}): id: "${ids.completed.toUpperCase()}" is not a lower-case UUID`,
    )
  })

  it('refuses what is not a Ratchet SQLite database at this version', async () => {
    await expect(
      copySqliteToPostgres({ sqliteFilename: join(dir, 'absent.db'), postgresUrl: pg.url }),
    ).rejects.toMatchObject({
      reason: 'sqlite-missing',
      message: `no SQLite database at ${join(dir, 'absent.db')}`,
    })
    const text = join(dir, 'notes.txt')
    writeFileSync(text, 'not a database, but long enough to look like a header of one. '.repeat(3))
    await expect(copySqliteToPostgres({ sqliteFilename: text, postgresUrl: pg.url })).rejects.toMatchObject({
      reason: 'sqlite-not-ratchet',
    })
    const foreign = join(dir, 'foreign.db')
    new Database(foreign).exec('CREATE TABLE things (id INTEGER PRIMARY KEY)').close()
    await expect(copySqliteToPostgres({ sqliteFilename: foreign, postgresUrl: pg.url })).rejects.toThrow(
      `${foreign} is not a Ratchet database: it has no executions, execution_history, execution_steps, execution_signals, events, task_queues, __drizzle_migrations table`,
    )
    const { file } = await fixture()
    const db = new Database(file)
    db.exec(
      'DELETE FROM __drizzle_migrations WHERE created_at = (SELECT max(created_at) FROM __drizzle_migrations)',
    )
    db.close()
    await expect(copySqliteToPostgres({ sqliteFilename: file, postgresUrl: pg.url })).rejects.toThrow(
      `${file} was last migrated by an older Ratchet`,
    )
    expect(Object.values(await counts()).every((n) => n <= 0)).toBe(true)
  })
})

function enqueuedInput(
  row: { maxAttempts: number; maxRecoveries: number; timeoutMs: number; backoff: string },
  now: number,
) {
  return {
    id: '0190b2a4-0000-7000-8000-000000000001',
    taskId: 'quick',
    input: '{"n":9}',
    maxAttempts: row.maxAttempts,
    maxRecoveries: row.maxRecoveries,
    timeoutMs: row.timeoutMs,
    backoff: JSON.parse(row.backoff) as never,
    priority: 0,
    idempotencyKey: 'invoice-7-again' as string | null,
    runAt: now,
  }
}
