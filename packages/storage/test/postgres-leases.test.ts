import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'

// Leases on the database's clock (the default), which the conformance suite cannot use (it
// moves `now`), and migrations run by several replicas at once.
const pg = await usePostgresTestDatabase()

const HOUR = 3_600_000
const lostError = JSON.stringify({ name: 'Error', message: 'lease expired', retryable: true })
const recoverRequest = (now: number) => ({
  now,
  error: lostError,
  exhaustedError: () => lostError,
  limit: 10,
})

function newExecution(now: number): NewExecution {
  return {
    id: newExecutionId(now),
    taskId: 'alpha',
    input: '{}',
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: null,
    runAt: now,
  }
}

describe.skipIf(!pg.available)('PostgreSQL migrations', () => {
  // First in the file: the database is fresh, nothing has migrated it yet.
  it('three replicas opening a fresh database at once all succeed, and migrate it once', async () => {
    const storages = await Promise.all([1, 2, 3].map(() => openPostgresStorage({ url: pg.url })))
    try {
      const applied = await pg.query<{ n: number }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations')
      const files = await pg.query<{ n: number }>(
        `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'executions'`,
      )
      expect(files).toEqual([{ n: 1 }])
      expect(applied[0]!.n).toBeGreaterThanOrEqual(1)
      // Each can write and read.
      const now = Date.now()
      for (const storage of storages) {
        const [outcome] = await storage.enqueue([newExecution(now)], now)
        expect(await storage.get(outcome!.row.id)).toEqual(outcome!.row)
      }
    } finally {
      await Promise.all(storages.map((s) => s.close()))
    }
    // Opening again applies nothing new.
    const before = await pg.query('SELECT id, hash FROM drizzle.__drizzle_migrations ORDER BY id')
    await (await openPostgresStorage({ url: pg.url })).close()
    expect(await pg.query('SELECT id, hash FROM drizzle.__drizzle_migrations ORDER BY id')).toEqual(before)
  })

  it("the queue tables are vacuumed sooner than PostgreSQL's default (migration 0001)", async () => {
    const options = await pg.query<{ table: string; options: string[] }>(
      `SELECT relname AS table, reloptions AS options FROM pg_class
        WHERE relname IN ('executions', 'execution_history') AND relkind = 'r' ORDER BY relname`,
    )
    expect(options).toEqual([
      { table: 'execution_history', options: ['autovacuum_vacuum_scale_factor=0.05'] },
      {
        table: 'executions',
        options: ['autovacuum_vacuum_scale_factor=0.01', 'autovacuum_analyze_scale_factor=0.02'],
      },
    ])
  })
})

describe.skipIf(!pg.available)("PostgreSQL leases on the database's clock", () => {
  let a: PostgresStorage
  let b: PostgresStorage
  beforeEach(async () => {
    await pg.reset()
    // Two replicas; b's clock runs an hour ahead of a's (and of the database's).
    a = await openPostgresStorage({ url: pg.url })
    b = await openPostgresStorage({ url: pg.url })
  })
  afterEach(async () => {
    await a.close()
    await b.close()
  })

  const dbNow = async () =>
    (
      await pg.query<{ now: number }>(`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now`)
    )[0]!.now

  it("a claim's lease runs on the database's clock, whatever the claimer's now", async () => {
    const now = Date.now()
    await a.enqueue([newExecution(now - HOUR)], now - HOUR)
    const before = await dbNow()
    // a's clock is an hour behind: its lease still ends 30 s after the database's now.
    const [claimed] = (
      await a.claim({ owner: 'a', now: now - HOUR, leaseMs: 30_000, limit: 1, taskIds: ['alpha'] })
    ).claimed
    const after = await dbNow()
    expect(claimed!.leaseExpiresAt).toBeGreaterThanOrEqual(before + 30_000)
    expect(claimed!.leaseExpiresAt).toBeLessThanOrEqual(after + 30_000)
    // extendLeases too
    expect(await a.extendLeases('a', [{ id: claimed!.id, run: 1 }], now - HOUR, 60_000)).toEqual([])
    expect((await a.get(claimed!.id))!.leaseExpiresAt).toBeGreaterThanOrEqual(after + 60_000)
  })

  it('a replica whose clock runs an hour ahead steals no live lease', async () => {
    const now = Date.now()
    const [outcome] = await a.enqueue([newExecution(now)], now)
    await a.claim({ owner: 'a', now, leaseMs: 30_000, limit: 1, taskIds: ['alpha'] })
    expect(await b.recoverLeases(recoverRequest(now + HOUR))).toEqual([])
    expect(await a.get(outcome!.row.id)).toMatchObject({ status: 'running', leaseOwner: 'a' })
    // and its run's writes still land
    expect(
      await a.settle([{ transition: 'complete', id: outcome!.row.id, run: 1, output: '1' }], now),
    ).toEqual({
      applied: [true],
      cancelled: [],
    })
  })

  it('an expired lease is recovered, even by a replica whose clock runs behind', async () => {
    const now = Date.now()
    const [outcome] = await a.enqueue([newExecution(now)], now)
    await a.claim({ owner: 'a', now, leaseMs: 50, limit: 1, taskIds: ['alpha'] })
    // Not yet: the database's clock has not passed the lease.
    expect(await b.recoverLeases(recoverRequest(now + HOUR))).toEqual([])
    await new Promise((resolve) => setTimeout(resolve, 120))
    const recovered = await b.recoverLeases(recoverRequest(now - HOUR))
    expect(recovered.map((r) => [r.id, r.status])).toEqual([[outcome!.row.id, 'queued']])
    expect(await a.get(outcome!.row.id)).toMatchObject({
      status: 'queued',
      leaseOwner: null,
      runAt: now - HOUR,
    })
    // The lost run is fenced out.
    expect(
      await a.settle([{ transition: 'complete', id: outcome!.row.id, run: 1, output: '1' }], now),
    ).toEqual({
      applied: [false],
      cancelled: [],
    })
  })
})
