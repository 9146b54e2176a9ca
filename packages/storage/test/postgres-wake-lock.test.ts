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
// each woken by its first child and losing the second child's wake-up to a claim).
const pg = await usePostgresTestDatabase()

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

describe.skipIf(!pg.available)('PostgreSQL: a wake-up of a queued execution', () => {
  let waker: PostgresStorage
  let claimer: PostgresStorage
  beforeAll(async () => {
    waker = await openPostgresStorage({ url: pg.url, leaseClock: 'caller', poolSize: 2 })
    claimer = await openPostgresStorage({ url: pg.url, leaseClock: 'caller', poolSize: 2 })
  })
  afterAll(async () => {
    await waker?.close()
    await claimer?.close()
  })
  beforeEach(() => pg.reset())

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
    expect(await pg.query('SELECT status, wake_pending FROM executions WHERE id = $1', [parent.id])).toEqual([
      { status: 'running', wake_pending: 1 },
    ])
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
      await pg.query('SELECT status, run_at, wake_pending FROM executions WHERE id = $1', [parent.id]),
    ).toEqual([{ status: 'queued', run_at: T0 + 5, wake_pending: 0 }])
    const history = await pg.query<{ from_status: string; to_status: string }>(
      `SELECT from_status, to_status FROM execution_history WHERE execution_id = $1 AND event = 'status' ORDER BY seq`,
      [parent.id],
    )
    expect(history.at(-1)).toEqual({ from_status: 'waiting', to_status: 'queued' })
  })
})
