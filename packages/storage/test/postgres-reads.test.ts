/**
 * What the PostgreSQL adapter's read side must do beyond the conformance suite: a change feed
 * that never skips a row of a transaction committing after a later one, its cursor grammar,
 * error summaries that survive what PostgreSQL's JSON cannot hold, ids that are not UUIDs,
 * concurrent publishes of one event id, and reclaimSpace's no-op.
 */
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { newExecutionId, ValidationError, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { testPostgresUrl, usePostgresTestDatabase } from '@ratchet/storage/testing'
import { parseChangeCursor } from '../src/postgres/change-bound'

const T0 = Date.UTC(2031, 0, 1)
const db = await usePostgresTestDatabase()

function execution(overrides: Partial<NewExecution> = {}): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: 'alpha',
    input: '{}',
    maxAttempts: 1,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0,
    ...overrides,
  }
}

describe('change cursors', () => {
  it("'' is before everything, a bare seq is 0.seq, anything else is a ValidationError", () => {
    expect(parseChangeCursor('')).toEqual({ xid: '0', seq: '0' })
    expect(parseChangeCursor('42')).toEqual({ xid: '0', seq: '42' })
    expect(parseChangeCursor('18446744073709551615.9223372036854775807')).toEqual({
      xid: '18446744073709551615',
      seq: '9223372036854775807',
    })
    for (const bad of ['x', '1.', '.1', '-1', '1.2.3', '18446744073709551616.1', '1.9223372036854775808'])
      expect(() => parseChangeCursor(bad), bad).toThrow(ValidationError)
  })
})

describe.skipIf(!db.available)('postgres reads', () => {
  let storage: PostgresStorage
  const clients: pg.Client[] = []
  beforeEach(async () => {
    await db.reset()
    storage = await openPostgresStorage({ url: db.url, leaseClock: 'caller', poolSize: 4 })
  })
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.end()
    await storage.close()
  })

  async function add(overrides: Partial<NewExecution>, now: number) {
    const [outcome] = await storage.enqueue([execution(overrides)], now)
    return outcome!.row
  }

  async function rawClient(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: db.url })
    client.on('error', () => {})
    await client.connect()
    clients.push(client)
    return client
  }

  /** Reads the feed from `after` until `count` changes came (another database's open transaction may hold it back). */
  async function readUntil(after: string, count: number) {
    const seen = []
    let cursor = after
    for (const deadline = Date.now() + 10_000; seen.length < count && Date.now() < deadline;) {
      const rows = await storage.changesSince({ after: cursor, limit: 100 })
      seen.push(...rows)
      if (rows.length > 0) cursor = rows.at(-1)!.cursor
      else await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return { seen, cursor }
  }

  it('a reader never skips a row of a transaction that commits after a later one, and sees none twice', async () => {
    const a = await add({}, T0)
    const start = await storage.changeCursor()
    expect(start).toMatch(/^\d+\.\d+$/)

    // A writer that began first: holds a's lock (as every history writer does) and appends a
    // status row, then stays open.
    const slow = await rawClient()
    await slow.query('BEGIN')
    await slow.query('SELECT id FROM executions WHERE id = $1 FOR UPDATE', [a.id])
    await slow.query(
      `INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt)
       VALUES ($1, $2, 'queued', 'cancelled', 0)`,
      [a.id, T0 + 1],
    )
    // A later transaction commits meanwhile, with a greater xid and a greater seq.
    const b = await add({ taskId: 'beta' }, T0 + 2)

    // While the first is open, the feed holds back what came after it: nothing yet.
    expect(await storage.changesSince({ after: start, limit: 100 })).toEqual([])
    expect(await storage.changeCursor()).toBe(start)

    await slow.query('COMMIT')
    const { seen, cursor } = await readUntil(start, 2)
    expect(seen.map((c) => [c.executionId, c.to])).toEqual([
      [a.id, 'cancelled'],
      [b.id, 'queued'],
    ])
    expect(new Set(seen.map((c) => c.cursor)).size).toBe(2)
    expect(await storage.changeCursor()).toBe(cursor)
    expect(await storage.changesSince({ after: cursor, limit: 100 })).toEqual([])
  })

  it('a writer that takes its xid first but appends after a later commit is still read first', async () => {
    const a = await add({}, T0)
    const start = await storage.changeCursor()
    const slow = await rawClient()
    await slow.query('BEGIN')
    await slow.query('SELECT pg_current_xact_id()')
    const b = await add({ taskId: 'beta' }, T0 + 1)
    // Its seq is now greater than b's: a feed by seq alone would have passed it already.
    await slow.query('SELECT id FROM executions WHERE id = $1 FOR UPDATE', [a.id])
    await slow.query(
      `INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt)
       VALUES ($1, $2, 'queued', 'cancelled', 0)`,
      [a.id, T0 + 2],
    )
    expect(await storage.changesSince({ after: start, limit: 100 })).toEqual([])
    await slow.query('COMMIT')
    const { seen } = await readUntil(start, 2)
    expect(seen.map((c) => c.executionId)).toEqual([a.id, b.id])
    expect(seen[0]!.seq).toBeGreaterThan(seen[1]!.seq)
  })

  it('changeCursor is the last change past ten of them (positions compare as numbers, not text)', async () => {
    // One transaction: one xid, seqs 1 to 12 ('9' > '12' as text).
    await storage.enqueue(
      Array.from({ length: 12 }, () => execution()),
      T0,
    )
    const changes = await storage.changesSince({ after: '', limit: 100 })
    expect(changes.map((c) => c.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    expect(await storage.changeCursor()).toBe(changes.at(-1)!.cursor)
  })

  it('a long transaction in another database of the cluster does not hold the feed back', async () => {
    const elsewhere = new pg.Client({ connectionString: testPostgresUrl() })
    elsewhere.on('error', () => {})
    await elsewhere.connect()
    clients.push(elsewhere)
    await elsewhere.query('BEGIN')
    await elsewhere.query('SELECT pg_current_xact_id()')
    const start = await storage.changeCursor()
    const a = await add({}, T0)
    const changes = await storage.changesSince({ after: start, limit: 10 })
    expect(changes.map((c) => c.executionId)).toEqual([a.id])
    expect(await storage.changeCursor()).toBe(changes[0]!.cursor)
    await elsewhere.query('ROLLBACK')
  })

  it('list reduces an error PostgreSQL JSON cannot hold (NUL, lone surrogate) instead of failing', async () => {
    const row = await add({}, T0)
    const error = JSON.stringify({
      name: 'E',
      message: 'a\u0000b\ud800c\\u0000d',
      code: 'X',
      stack: '\u0000',
    })
    await db.query(`UPDATE executions SET error = $2, status = 'failed' WHERE id = $1`, [row.id, error])
    const [summary] = await storage.list({ limit: 1 })
    expect(JSON.parse(summary!.error!)).toEqual({ name: 'E', message: 'a\ufffdb\ufffdc\\u0000d', code: 'X' })
  })

  it('ids that are not UUIDs name nothing: reads return nothing instead of failing', async () => {
    const row = await add({}, T0)
    expect(await storage.list({ rootId: 'nope', limit: 5 })).toEqual([])
    expect(await storage.list({ parentId: 'nope', limit: 5 })).toEqual([])
    // beforeId compares as text, as on SQLite: every canonical id sorts below 'z'.
    expect((await storage.list({ beforeId: 'z', limit: 5 })).map((r) => r.id)).toEqual([row.id])
    expect(await storage.list({ beforeId: '0', limit: 5 })).toEqual([])
    expect(await storage.history('nope')).toEqual([])
    expect(await storage.steps('nope', { limit: 5 })).toEqual([])
    expect(await storage.changesSince({ after: '', limit: 5, rootId: 'nope' })).toEqual([])
    expect(await storage.listEvents({ beforeId: 'z', limit: 5 })).toEqual([])
  })

  it('concurrent publishes of one event id record it once; the others are repeats', async () => {
    const others = await Promise.all([1, 2, 3].map(() => openPostgresStorage({ url: db.url, poolSize: 1 })))
    try {
      const publish = (s: PostgresStorage, i: number) => {
        const run = execution({ idempotencyKey: `evt:${i}` })
        return s.publishEvent(
          {
            id: newExecutionId(T0),
            type: 'order.placed',
            payload: '{"type":"order.placed"}',
            createdAt: T0,
            executionIds: JSON.stringify([run.id]),
            publishId: 'evt-1',
          },
          [run],
          T0,
        )
      }
      const outcomes = await Promise.all([storage, ...others].map((s, i) => publish(s, i)))
      expect(outcomes.filter((o) => !o.repeat)).toHaveLength(1)
      const first = outcomes.find((o) => !o.repeat)!
      for (const o of outcomes) expect(o.event).toEqual(first.event)
      expect(await storage.listEvents({ limit: 10 })).toEqual([first.event])
      expect(await storage.list({ limit: 10 })).toHaveLength(1)
    } finally {
      for (const s of others) await s.close()
    }
  })

  it('reclaimSpace does nothing: PostgreSQL reuses the space of deleted rows itself', async () => {
    expect(await storage.reclaimSpace(100)).toEqual({ freedPages: 0, freePages: 0 })
  })
})
