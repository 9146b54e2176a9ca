import { expect } from 'vitest'
import type { NewExecution, Storage } from '@ratchet/core'
import { T0, claimOne, detailedError, enqueueOne, type ConformanceDeclarer } from './fixtures'

/**
 * The counters: `taskStats` (per task, by status, and the queue due now), `throughput` (ends and
 * first starts per time bucket) and `queueStats` (per task, queued, due and the oldest due).
 */
export function statsConformance({ group, test }: ConformanceDeclarer): void {
  group('stats', () => {
    test('taskStats counts by task and status, and the queue due now', async (open) => {
      const storage = await open()
      expect(await storage.taskStats(T0)).toEqual([])
      await add(storage, { runAt: T0 - 500 })
      await add(storage, { runAt: T0 - 100 })
      await add(storage, { runAt: T0 + 60_000 })
      await add(storage, { taskId: 'beta' })
      await claim(storage, T0, 'beta')
      const stats = await storage.taskStats(T0)
      const zero = { queued: 0, running: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0, timed_out: 0 }
      expect([...stats].sort((a, b) => a.taskId.localeCompare(b.taskId))).toEqual([
        { taskId: 'alpha', counts: { ...zero, queued: 3 }, queueDepth: 2, oldestQueuedAt: T0 - 500 },
        { taskId: 'beta', counts: { ...zero, running: 1 }, queueDepth: 0, oldestQueuedAt: null },
      ])
    })

    test('throughput counts ends by finishedAt and first starts by startedAt, per bucket', async (open) => {
      const storage = await open()
      const a = await add(storage)
      const b = await add(storage)
      const c = await add(storage, { taskId: 'beta' })
      await add(storage) // never started
      await claim(storage, T0 + 100) // a
      await claim(storage, T0 + 1_100) // b
      await claim(storage, T0 + 1_200, 'beta') // c
      await storage.settle([{ transition: 'complete', id: a.id, run: 1, output: '1' }], T0 + 1_500)
      await storage.settle([{ transition: 'fail', id: b.id, run: 1, error: detailedError('no') }], T0 + 2_500)
      await storage.settle(
        [{ transition: 'time_out', id: c.id, run: 1, error: detailedError('late') }],
        T0 + 2_600,
      )
      const rows = await storage.throughput({ from: T0, to: T0 + 3_000, bucketMs: 1_000 })
      const none = { completed: 0, failed: 0, timedOut: 0, cancelled: 0, started: 0 }
      expect(rows).toEqual([
        { ...none, bucket: 0, started: 1 },
        { ...none, bucket: 1, completed: 1, started: 2 },
        { ...none, bucket: 2, failed: 1, timedOut: 1 },
      ])
      expect(await storage.throughput({ taskId: 'beta', from: T0, to: T0 + 3_000, bucketMs: 1_000 })).toEqual(
        [
          { ...none, bucket: 1, started: 1 },
          { ...none, bucket: 2, timedOut: 1 },
        ],
      )
      // `to` is exclusive, `from` inclusive
      expect(await storage.throughput({ from: T0 + 1_500, to: T0 + 2_500, bucketMs: 10_000 })).toEqual([
        { ...none, bucket: 0, completed: 1 },
      ])
    })

    test('queueStats counts queued and due executions per task with the oldest due run_at', async (open) => {
      const storage = await open()
      expect(await storage.queueStats(T0)).toEqual([])
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 - 300 }, T0 - 300)
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 - 100 }, T0 - 100)
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 + 5_000 })
      await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 1_000 })
      const claimed = await enqueueOne(storage, { taskId: 'gamma', runAt: T0 - 50 }, T0 - 50)
      expect(await storage.queueStats(T0)).toEqual([
        { taskId: 'alpha', queued: 3, due: 2, oldestDueAt: T0 - 300 },
        { taskId: 'beta', queued: 1, due: 0, oldestDueAt: null },
        { taskId: 'gamma', queued: 1, due: 1, oldestDueAt: T0 - 50 },
      ])
      // A claimed (running) execution is not queued any more.
      expect((await claimOne(storage, { taskIds: ['gamma'] })).id).toBe(claimed.id)
      const later = await storage.queueStats(T0 + 1_000)
      expect(later).toEqual([
        { taskId: 'alpha', queued: 3, due: 2, oldestDueAt: T0 - 300 },
        { taskId: 'beta', queued: 1, due: 1, oldestDueAt: T0 + 1_000 },
      ])
    })
  })
}

/** Enqueues one execution (one attempt) at `now`. */
const add = (storage: Storage, overrides: Partial<NewExecution> = {}, now = T0) =>
  enqueueOne(storage, { maxAttempts: 1, ...overrides }, now)
/** Claims the one due execution of `taskId` at `now`. */
const claim = (storage: Storage, now: number, taskId = 'alpha') =>
  claimOne(storage, { now, taskIds: [taskId] })
