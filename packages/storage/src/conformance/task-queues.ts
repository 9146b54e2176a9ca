import { expect } from 'vitest'
import { T0, claimRequest, labelOf, newExecution, type ConformanceDeclarer } from './fixtures'

/**
 * Paused task queues (`setTaskPaused`): the claim and `nextDueAt` pass over a paused task's
 * queued executions, and nothing else; the state is shared by every connection (that a resume
 * wakes other replicas is PostgreSQL's: postgres-notifications.test.ts). Pausing twice keeps the
 * first time.
 */
export function taskQueueConformance({ group, test }: ConformanceDeclarer): void {
  group('task queues', () => {
    test('a paused task’s executions are not claimed; other tasks’ are; after resume they are', async (open) => {
      const storage = await open()
      await storage.enqueue(
        [
          newExecution({ label: 'a0', runAt: T0 - 30 }),
          newExecution({ label: 'b0', taskId: 'beta', runAt: T0 - 20 }),
          newExecution({ label: 'a1', runAt: T0 - 10 }),
        ],
        T0 - 30,
      )
      expect(await storage.setTaskPaused('alpha', true, T0)).toEqual({ taskId: 'alpha', pausedAt: T0 })
      const taskIds = ['alpha', 'beta']
      expect((await storage.claim(claimRequest({ taskIds }))).claimed.map(labelOf)).toEqual(['b0'])
      const nothing = await storage.claim(claimRequest({ taskIds }))
      expect(nothing.claimed).toEqual([])
      // A paused task's due work is not due for the executor's timer either (it would spin).
      expect(await storage.nextDueAt(taskIds)).toBeNull()
      // Enqueues still land, and stay queued.
      await storage.enqueue([newExecution({ label: 'a2' })], T0)
      expect(await storage.setTaskPaused('alpha', false, T0 + 5)).toEqual({ taskId: 'alpha', pausedAt: null })
      expect(await storage.nextDueAt(taskIds)).toBe(T0 - 30)
      const claimed = (await storage.claim(claimRequest({ taskIds, now: T0 + 5 }))).claimed
      expect(claimed.map(labelOf)).toEqual(['a0', 'a1', 'a2'])
    })

    test('pausing a paused queue keeps when it was paused; taskQueues lists every queue with a state', async (open) => {
      const storage = await open()
      expect(await storage.taskQueues()).toEqual([])
      await storage.setTaskPaused('beta', true, T0)
      await storage.setTaskPaused('beta', true, T0 + 1000)
      await storage.setTaskPaused('alpha', true, T0 + 10)
      await storage.setTaskPaused('alpha', false, T0 + 20)
      expect(await storage.taskQueues()).toEqual([
        { taskId: 'alpha', pausedAt: null },
        { taskId: 'beta', pausedAt: T0 },
      ])
    })

    test('the state is the database’s: a pause made on one connection holds for another’s claim', async (open) => {
      const [a, b] = [await open(), await open()]
      await a.enqueue([newExecution({ label: 'a0' })], T0)
      await a.setTaskPaused('alpha', true, T0)
      expect((await b.claim(claimRequest())).claimed).toEqual([])
      await a.setTaskPaused('alpha', false, T0)
      expect((await b.claim(claimRequest())).claimed.map(labelOf)).toEqual(['a0'])
    })
  })
}
