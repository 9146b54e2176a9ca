import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { newExecutionId, StorageUnavailableError, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'

// LISTEN/NOTIFY between two replicas, and what the adapter does when the database goes away.
const pg = await usePostgresTestDatabase()

function newExecution(now: number, overrides: Partial<NewExecution> = {}): NewExecution {
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
    ...overrides,
  }
}

/** Resolves when `predicate` holds, polling every 10 ms; fails after `timeoutMs`. */
async function eventually(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > until) throw new Error('timed out waiting for the condition')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Ends the backends of one application name (as an outage, or an admin, would). */
const terminate = (applicationName: string) =>
  pg.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
    applicationName,
  ])

describe.skipIf(!pg.available)('PostgreSQL notifications', () => {
  let a: PostgresStorage
  let b: PostgresStorage
  beforeEach(async () => {
    await pg.reset()
    a = await openPostgresStorage({ url: pg.url, applicationName: 'replica-a' })
    b = await openPostgresStorage({ url: pg.url, applicationName: 'replica-b' })
  })
  afterEach(async () => {
    await a.close()
    await b.close()
  })

  it("an enqueue on one replica wakes another's listeners; a claim tells them of a change", async () => {
    let wakes = 0
    let changes = 0
    a.notifications.onWake(() => wakes++)
    a.notifications.onChange(() => changes++)
    await eventually(() => a.notifications.connected)
    const now = Date.now()
    await b.enqueue([newExecution(now)], now)
    await eventually(() => wakes === 1 && changes === 1)
    // A delayed enqueue is a change, not a wake-up: nothing is claimable yet.
    await b.enqueue([newExecution(now, { runAt: now + 60_000 })], now)
    await eventually(() => changes === 2)
    expect(wakes).toBe(1)
    await b.claim({ owner: 'b', now, leaseMs: 30_000, limit: 10, taskIds: ['alpha'] })
    await eventually(() => changes === 3)
    // A claim of nothing sends nothing.
    await b.claim({ owner: 'b', now, leaseMs: 30_000, limit: 10, taskIds: ['alpha'] })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect([wakes, changes]).toEqual([1, 3])
  })

  it('a replica does not hear its own writes (its engine woke itself); the other one does', async () => {
    const heard = { a: { wakes: 0, changes: 0 }, b: { wakes: 0, changes: 0 } }
    a.notifications.onWake(() => heard.a.wakes++)
    a.notifications.onChange(() => heard.a.changes++)
    b.notifications.onWake(() => heard.b.wakes++)
    b.notifications.onChange(() => heard.b.changes++)
    await eventually(() => a.notifications.connected && b.notifications.connected)
    const now = Date.now()
    await a.enqueue([newExecution(now)], now)
    await eventually(() => heard.b.wakes === 1 && heard.a.changes === 1)
    await a.claim({ owner: 'a', now, leaseMs: 30_000, limit: 10, taskIds: ['alpha'] })
    await eventually(() => heard.b.changes === 2 && heard.a.changes === 2)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(heard).toEqual({ a: { wakes: 0, changes: 2 }, b: { wakes: 1, changes: 2 } })
  })

  it('a resumed task queue wakes the other replicas; a pause does not', async () => {
    let wakes = 0
    a.notifications.onWake(() => wakes++)
    await eventually(() => a.notifications.connected)
    const now = Date.now()
    await b.setTaskPaused('alpha', true, now)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(wakes).toBe(0)
    await b.setTaskPaused('alpha', false, now)
    await eventually(() => wakes === 1)
  })

  it('a parent woken by its child, a signal and a retry due now wake the other replicas; a retry later does not', async () => {
    let wakes = 0
    a.notifications.onWake(() => wakes++)
    await eventually(() => a.notifications.connected)
    const now = Date.now()
    const [parent, child] = await b.enqueue([newExecution(now), newExecution(now, { taskId: 'beta' })], now)
    await eventually(() => wakes === 1)
    await b.claim({ owner: 'b', now, leaseMs: 30_000, limit: 10, taskIds: ['alpha', 'beta'] })
    await b.settle([{ transition: 'park', id: parent!.row.id, run: 1, runAt: now + 60_000 }], now)
    expect(wakes).toBe(1)
    await b.settle(
      [{ transition: 'complete', id: child!.row.id, run: 1, output: '1', wakeParentId: parent!.row.id }],
      now,
    )
    await eventually(() => wakes === 2)
    await b.claim({ owner: 'b', now, leaseMs: 30_000, limit: 10, taskIds: ['alpha'] })
    await b.settle([{ transition: 'park', id: parent!.row.id, run: 2, runAt: now + 60_000 }], now)
    await b.signal(parent!.row.id, 'go', '1', now)
    await eventually(() => wakes === 3)
    const error = JSON.stringify({ name: 'Error', message: 'again', retryable: true })
    await b.claim({ owner: 'b', now, leaseMs: 30_000, limit: 10, taskIds: ['alpha'] })
    await b.settle([{ transition: 'retry', id: parent!.row.id, run: 3, error, delayMs: 60_000 }], now)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(wakes).toBe(3)
    await b.claim({ owner: 'b', now: now + 60_000, leaseMs: 30_000, limit: 10, taskIds: ['alpha'] })
    await b.settle([{ transition: 'retry', id: parent!.row.id, run: 4, error, delayMs: 0 }], now + 60_000)
    await eventually(() => wakes === 4)
  })

  it('when the LISTEN connection is cut it says so, reconnects, and hears again', async () => {
    const seen: boolean[] = []
    let wakes = 0
    a.notifications.onConnection((up) => seen.push(up))
    a.notifications.onWake(() => wakes++)
    await eventually(() => a.notifications.connected)
    await terminate('replica-a:listen')
    await eventually(() => seen.length === 2, 10_000)
    expect(seen).toEqual([false, true])
    const now = Date.now()
    await b.enqueue([newExecution(now)], now)
    await eventually(() => wakes === 1)
  })
})

describe.skipIf(!pg.available)('PostgreSQL outages', () => {
  it('opening an unreachable database throws StorageUnavailableError', async () => {
    const error: unknown = await openPostgresStorage({ url: 'postgres://postgres@127.0.0.1:1/none' }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect((error as StorageUnavailableError).code).toBe('STORAGE_UNAVAILABLE')
    expect((error as Error).cause).toBeDefined()
  })

  it('backends terminated under it: calls fail with StorageUnavailableError, write nothing half, then work again', async () => {
    await pg.reset()
    const storage = await openPostgresStorage({ url: pg.url, applicationName: 'outage', poolSize: 2 })
    try {
      const now = Date.now()
      await storage.enqueue([newExecution(now)], now)
      let failures = 0
      let written = 1
      for (let i = 0; i < 20; i++) {
        await terminate('outage')
        const batch = [newExecution(now, { idempotencyKey: `k${i}` }), newExecution(now)]
        try {
          await storage.enqueue(batch, now)
          written += 2
        } catch (error) {
          expect(error).toBeInstanceOf(StorageUnavailableError)
          failures++
        }
      }
      expect(failures).toBeGreaterThan(0)
      // Each call wrote both of its executions or neither.
      const rows = await pg.query<{ n: number }>('SELECT count(*) AS n FROM executions')
      expect(rows).toEqual([{ n: written }])
      expect(await pg.query('SELECT count(*) AS n FROM execution_history')).toEqual([{ n: written }])
      // and the pool recovers by itself
      await storage.enqueue([newExecution(now)], now)
    } finally {
      await storage.close()
    }
  })
})
