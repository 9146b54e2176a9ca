import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { T0 } from '../src/conformance/fixtures'
import { wake } from '../src/postgres/wake'

// A wake-up (a child's end, a signal, a wakeup) that finds its execution `queued` changes
// nothing, but it must hold the row until its transaction commits. Otherwise another replica
// can claim the execution in between, and its run reads the state before the wake-up's
// transaction commits (the child still running, the signal not there), parks, and nothing
// wakes it again: found by the three-replica test (9 of 1,500 fan-out parents waiting for good,
// each woken by its first child and losing the second child's wake-up to a claim). And the
// wake-up must act on the row as a claim in flight leaves it (running), not as its snapshot
// saw it (queued): that lost one more in the next run.
const database = await usePostgresTestDatabase()

function execution(taskId: string): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId,
    input: '{}',
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0,
  }
}

/** Backends of the test database waiting for a lock. */
async function lockWaiters(): Promise<number> {
  const [row] = await database.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`,
    [database.name],
  )
  return row!.n
}

async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('not within 10 s')
    await delay(10)
  }
}

describe.skipIf(!database.available)('PostgreSQL: a wake-up of a queued execution', () => {
  let waker: PostgresStorage
  let claimer: PostgresStorage
  beforeAll(async () => {
    waker = await openPostgresStorage({ url: database.url, leaseClock: 'caller', poolSize: 2 })
    claimer = await openPostgresStorage({ url: database.url, leaseClock: 'caller', poolSize: 2 })
  })
  afterAll(async () => {
    await waker?.close()
    await claimer?.close()
  })
  beforeEach(() => database.reset())

  const claim = () =>
    claimer.claim({ owner: 'other', now: T0, leaseMs: 30_000, limit: 10, taskIds: ['parent'] })

  it('holds it from other claims until the waking transaction commits', async () => {
    const parent = execution('parent')
    await waker.enqueue([parent], T0)
    await waker.database.transaction(async (tx) => {
      expect(await wake(tx, parent.id, T0, 'child x completed')).toBe(false)
      // Another replica claims meanwhile: it must pass the execution over, not start a run that
      // would read the state as it was before this transaction.
      expect((await claim()).claimed).toEqual([])
    })
    expect((await claim()).claimed.map((row) => row.id)).toEqual([parent.id])
  })

  it('waits for a claim in progress, then marks the running execution wake_pending', async () => {
    const parent = execution('parent')
    await waker.enqueue([parent], T0)
    expect((await claim()).claimed.map((row) => row.id)).toEqual([parent.id])
    await waker.database.transaction(async (tx) => {
      expect(await wake(tx, parent.id, T0, 'child x completed')).toBe(false)
    })
    expect(
      await database.query('SELECT status, wake_pending FROM executions WHERE id = $1', [parent.id]),
    ).toEqual([{ status: 'running', wake_pending: 1 }])
  })

  it('a claim in flight: waits for it, then marks the execution it started wake_pending', async () => {
    const parent = execution('parent')
    await waker.enqueue([parent], T0)
    // Another replica's claim, not committed yet: queued → running.
    const other = new pg.Client({ connectionString: database.url })
    await other.connect()
    try {
      await other.query('BEGIN')
      await other.query(`UPDATE executions SET status = 'running', attempt = attempt + 1 WHERE id = $1`, [
        parent.id,
      ])
      const woke = waker.database.transaction((tx) => wake(tx, parent.id, T0, 'child x completed'))
      // The wake-up waits for the claim's row lock; then the claim commits.
      await until(async () => (await lockWaiters()) > 0)
      await other.query('COMMIT')
      expect(await woke).toBe(false)
    } finally {
      await other.end()
    }
    // Its park will see the wake-up and requeue it instead of waiting for good.
    expect(
      await database.query('SELECT status, wake_pending FROM executions WHERE id = $1', [parent.id]),
    ).toEqual([{ status: 'running', wake_pending: 1 }])
  })

  it('still queues a waiting execution, with its history row', async () => {
    const parent = execution('parent')
    await waker.enqueue([parent], T0)
    await claim()
    await claimer.settle([{ transition: 'park', id: parent.id, run: 1, runAt: T0 + 3_600_000 }], T0)
    await waker.database.transaction(async (tx) => {
      expect(await wake(tx, parent.id, T0 + 5, 'child x completed')).toBe(true)
    })
    expect(
      await database.query('SELECT status, run_at, wake_pending FROM executions WHERE id = $1', [parent.id]),
    ).toEqual([{ status: 'queued', run_at: T0 + 5, wake_pending: 0 }])
    const history = await database.query<{ from_status: string; to_status: string }>(
      `SELECT from_status, to_status FROM execution_history WHERE execution_id = $1 AND event = 'status' ORDER BY seq`,
      [parent.id],
    )
    expect(history.at(-1)).toEqual({ from_status: 'waiting', to_status: 'queued' })
  })
})
