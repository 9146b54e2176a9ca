import { expect } from 'vitest'
import { newExecutionId, type Storage } from '@ratchet/core'
import {
  LEASE_MS,
  T0,
  claimOne,
  claimRequest,
  enqueueOne,
  mustGet,
  recoverRequest,
  storedError,
  type ConformanceDeclarer,
  type ExecutionOverrides,
} from './fixtures'

/**
 * `cancel` (an execution and its unfinished subtree, in one transaction), the children a
 * settlement or a recovery cancels when their parent ends (`cancelChildren`,
 * `cancelChildrenError`: the awaited ones, with their subtrees; spawned ones live on), and
 * `rerun` (which reruns the descendants cancelled because it ended). A cancel racing a
 * settlement over two connections: races-fences.ts.
 */
export function cancellationConformance({ group, test }: ConformanceDeclarer): void {
  group('cancel', () => {
    test('cancel of a queued execution', async (open) => {
      const storage = await open()
      const queued = await enqueueOne(storage)
      const error = storedError('cancelled')
      const now = T0 + 5
      const outcome = await storage.cancel(queued.id, now, error)
      expect(outcome).toEqual({
        cancelledFrom: 'queued',
        descendants: [],
        row: { ...queued, status: 'cancelled', error, updatedAt: now, finishedAt: now },
      })
      expect(await storage.get(queued.id)).toEqual(outcome!.row)
      expect((await storage.history(queued.id)).at(-1)).toMatchObject({
        at: now,
        from: 'queued',
        to: 'cancelled',
        run: 0,
      })
      expect((await storage.claim(claimRequest({ now }))).claimed).toEqual([])
      expect(await storage.nextDueAt(['alpha'])).toBeNull()
    })

    test('cancel of a running execution clears its lease', async (open) => {
      const storage = await open()
      const { id } = await enqueueOne(storage)
      const running = await claimOne(storage)
      const error = storedError('cancelled')
      const now = T0 + 5
      const outcome = await storage.cancel(id, now, error)
      expect(outcome).toEqual({
        cancelledFrom: 'running',
        descendants: [],
        row: {
          ...running,
          status: 'cancelled',
          error,
          leaseOwner: null,
          leaseExpiresAt: null,
          updatedAt: now,
          finishedAt: now,
        },
      })
      expect((await storage.history(id)).at(-1)).toMatchObject({
        at: now,
        from: 'running',
        to: 'cancelled',
        run: 1,
      })
      expect(
        await storage.recoverLeases(recoverRequest({ now: now + 10 * LEASE_MS, error, limit: 10 })),
      ).toEqual([])
    })

    test('cancel of a finished execution changes nothing', async (open) => {
      const storage = await open()
      const { id } = await enqueueOne(storage)
      await claimOne(storage)
      await storage.settle([{ transition: 'complete', id, run: 1, output: '"done"' }], T0 + 1)
      const done = await mustGet(storage, id)
      const history = await storage.history(id)
      expect(await storage.cancel(id, T0 + 2, storedError('too late'))).toEqual({
        row: done,
        cancelledFrom: null,
        descendants: [],
      })
      expect(await storage.get(id)).toEqual(done)
      expect(await storage.history(id)).toEqual(history)
    })

    test('cancel of a cancelled execution changes nothing', async (open) => {
      const storage = await open()
      const { id } = await enqueueOne(storage)
      const first = await storage.cancel(id, T0 + 1, storedError('first'))
      const history = await storage.history(id)
      expect(await storage.cancel(id, T0 + 2, storedError('second'))).toEqual({
        row: first!.row,
        cancelledFrom: null,
        descendants: [],
      })
      expect(await storage.history(id)).toEqual(history)
    })

    /** A running parent of task alpha with children of task beta: the state of a fan-out when it ends. */
    async function family(
      storage: Storage,
      parentOverrides: ExecutionOverrides = {},
      { withRunning = true } = {},
    ) {
      const parent = await enqueueOne(storage, { label: 'parent', ...parentOverrides })
      await claimOne(storage)
      const link = (wakesParent: boolean, label: string, parentId = parent.id) =>
        enqueueOne(storage, { label, taskId: 'beta', parentId, rootId: parent.id, wakesParent })
      // Each claimed child is enqueued (and claimed) before the next one exists.
      const done = await link(true, 'done')
      await claimOne(storage, { taskIds: ['beta'] })
      await storage.settle([{ transition: 'complete', id: done.id, run: 1, output: '1' }], T0)
      const awaitedRunning = withRunning ? await link(true, 'awaited-running') : undefined
      if (withRunning) await claimOne(storage, { taskIds: ['beta'] })
      const awaitedQueued = await link(true, 'awaited-queued')
      const spawned = await link(false, 'spawned')
      const grandchild = await link(false, 'grandchild', awaitedQueued.id)
      return { parent, awaitedQueued, awaitedRunning, done, spawned, grandchild }
    }
    const statusOf = async (storage: Storage, id: string) => (await mustGet(storage, id)).status

    test('settle with cancelChildren cancels the unfinished children it awaited, with their subtrees', async (open) => {
      const storage = await open()
      const f = await family(storage)
      const error = storedError('parent ended')
      const now = T0 + 10
      const outcome = await storage.settle(
        [
          {
            transition: 'fail',
            id: f.parent.id,
            run: 1,
            error: storedError('x'),
            cancelChildren: { error },
          },
        ],
        now,
      )
      expect(outcome.applied).toEqual([true])
      expect(
        [...outcome.cancelled].sort((a, b) => (a.id < b.id ? -1 : 1)).map((c) => [c.id, c.cancelledFrom]),
      ).toEqual(
        [
          [f.awaitedQueued.id, 'queued'],
          [f.awaitedRunning!.id, 'running'],
          [f.grandchild.id, 'queued'],
        ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
      )
      for (const id of [f.awaitedQueued.id, f.awaitedRunning!.id, f.grandchild.id]) {
        expect(await mustGet(storage, id)).toMatchObject({
          status: 'cancelled',
          error,
          finishedAt: now,
          leaseOwner: null,
        })
        expect((await storage.history(id)).at(-1)).toMatchObject({ at: now, to: 'cancelled' })
      }
      // A spawned child outlives its parent; a finished one is left as it was.
      expect(await statusOf(storage, f.spawned.id)).toBe('queued')
      expect(await statusOf(storage, f.done.id)).toBe('completed')
    })

    test('settle without cancelChildren, or one that does not end the execution, cancels nothing', async (open) => {
      const storage = await open()
      const f = await family(storage)
      const error = storedError('parent ended')
      expect(
        await storage.settle(
          [
            {
              transition: 'retry',
              id: f.parent.id,
              run: 1,
              error,
              delayMs: 4,
              cancelChildren: { error },
            },
          ],
          T0 + 1,
        ),
      ).toEqual({ applied: [true], cancelled: [] })
      const [again] = (await storage.claim(claimRequest({ now: T0 + 5, limit: 1 }))).claimed
      expect(again?.id).toBe(f.parent.id)
      expect(
        await storage.settle([{ transition: 'complete', id: f.parent.id, run: 2, output: '1' }], T0 + 6),
      ).toEqual({ applied: [true], cancelled: [] })
      expect(await statusOf(storage, f.awaitedQueued.id)).toBe('queued')
      expect(await statusOf(storage, f.awaitedRunning!.id)).toBe('running')
    })

    test('a stale settlement with cancelChildren cancels nothing', async (open) => {
      const storage = await open()
      const f = await family(storage)
      const error = storedError('parent ended')
      expect(
        await storage.settle(
          [{ transition: 'complete', id: f.parent.id, run: 2, output: '1', cancelChildren: { error } }],
          T0 + 1,
        ),
      ).toEqual({ applied: [false], cancelled: [] })
      expect(await statusOf(storage, f.awaitedQueued.id)).toBe('queued')
    })

    test('recoverLeases with cancelChildrenError: a parent past its recovery budget takes its awaited children', async (open) => {
      const storage = await open()
      const f = await family(storage, { maxRecoveries: 0 }, { withRunning: false })
      const error = storedError('parent ended')
      const recovered = await storage.recoverLeases(
        recoverRequest({
          now: T0 + 10 * LEASE_MS,
          error: storedError('lost'),
          cancelChildrenError: error,
          limit: 10,
        }),
      )
      expect(recovered).toHaveLength(1)
      expect(recovered[0]).toMatchObject({ id: f.parent.id, status: 'failed' })
      expect(recovered[0]!.cancelledChildren.map((c) => c.id).sort()).toEqual(
        [f.awaitedQueued.id, f.grandchild.id].sort(),
      )
      expect(await mustGet(storage, f.awaitedQueued.id)).toMatchObject({ status: 'cancelled', error })
      expect(await statusOf(storage, f.spawned.id)).toBe('queued')
      expect(await statusOf(storage, f.done.id)).toBe('completed')
    })

    test('cancel stores descendantError on the descendants and error on the execution', async (open) => {
      const storage = await open()
      const f = await family(storage)
      const mine = storedError('cancelled')
      const below = JSON.stringify({
        name: 'ParentEndedError',
        message: 'x',
        code: 'PARENT_ENDED',
        retryable: false,
      })
      const outcome = await storage.cancel(f.parent.id, T0 + 5, mine, below)
      expect(outcome?.row.error).toBe(mine)
      expect(outcome!.descendants.map((d) => d.id).sort()).toEqual(
        [f.awaitedQueued.id, f.awaitedRunning!.id, f.spawned.id, f.grandchild.id].sort(),
      )
      for (const d of outcome!.descendants) expect((await mustGet(storage, d.id)).error).toBe(below)
    })

    test('rerun reruns the descendants cancelled because it ended (PARENT_ENDED), and no others', async (open) => {
      const storage = await open()
      const f = await family(storage, { maxAttempts: 1 })
      const parentEnded = JSON.stringify({
        name: 'ParentEndedError',
        message: 'x',
        code: 'PARENT_ENDED',
        retryable: false,
      })
      await storage.settle(
        [
          {
            transition: 'fail',
            id: f.parent.id,
            run: 1,
            error: storedError('x'),
            cancelChildren: { error: parentEnded },
          },
        ],
        T0 + 10,
      )
      // Cancelled on its own (not because of the parent): a rerun of the parent leaves it.
      await storage.cancel(f.spawned.id, T0 + 11, storedError('by hand'))
      const outcome = await storage.rerun(f.parent.id, T0 + 20)
      expect(outcome?.rerunFrom).toBe('failed')
      expect(outcome!.descendants.map((d) => d.id).sort()).toEqual(
        [f.awaitedQueued.id, f.awaitedRunning!.id, f.grandchild.id].sort(),
      )
      for (const id of [f.awaitedQueued.id, f.awaitedRunning!.id, f.grandchild.id]) {
        expect(await mustGet(storage, id)).toMatchObject({
          status: 'queued',
          error: null,
          finishedAt: null,
          failures: 0,
          runAt: T0 + 20,
        })
        expect((await storage.history(id)).at(-1)).toMatchObject({
          at: T0 + 20,
          from: 'cancelled',
          to: 'queued',
        })
      }
      expect(await statusOf(storage, f.spawned.id)).toBe('cancelled')
      expect(await statusOf(storage, f.done.id)).toBe('completed')
      // A rerun that does not apply reruns nothing.
      const again = await storage.rerun(f.parent.id, T0 + 30)
      expect(again).toMatchObject({ rerunFrom: null, descendants: [] })
    })

    test('cancel of an unknown id returns undefined', async (open) => {
      const storage = await open()
      await enqueueOne(storage)
      expect(await storage.cancel(newExecutionId(T0), T0, storedError('x'))).toBeUndefined()
    })

    test('rerun applies to a failed, timed_out or cancelled execution within its deadline; others are left as they are', async (open) => {
      const storage = await open()
      expect(await storage.rerun(newExecutionId(T0), T0)).toBeUndefined()
      const queued = await enqueueOne(storage, { taskId: 'queued' })
      const done = await enqueueOne(storage, { taskId: 'done' })
      await claimOne(storage, { taskIds: ['done'] })
      await storage.settle([{ transition: 'complete', id: done.id, run: 1, output: '1' }], T0 + 1)
      // Past its deadline, a rerun would only time out again.
      const expired = await enqueueOne(storage, { taskId: 'expired', deadlineAt: T0 + 2 })
      await claimOne(storage, { taskIds: ['expired'] })
      await storage.settle([{ transition: 'fail', id: expired.id, run: 1, error: storedError('e') }], T0 + 1)
      for (const id of [queued.id, done.id, expired.id]) {
        const before = await mustGet(storage, id)
        const history = await storage.history(id)
        expect(await storage.rerun(id, T0 + 2)).toEqual({ row: before, rerunFrom: null, descendants: [] })
        expect(await storage.get(id)).toEqual(before)
        expect(await storage.history(id)).toEqual(history)
      }
      const cancelled = await enqueueOne(storage, { taskId: 'cancelled' })
      await storage.cancel(cancelled.id, T0 + 1, storedError('c'))
      const timedOut = await enqueueOne(storage, { taskId: 'timed-out', maxAttempts: 1 })
      await claimOne(storage, { taskIds: ['timed-out'] })
      await storage.settle(
        [{ transition: 'time_out', id: timedOut.id, run: 1, error: storedError('t') }],
        T0 + 1,
      )
      for (const [row, from] of [
        [cancelled, 'cancelled'],
        [timedOut, 'timed_out'],
      ] as const) {
        const outcome = await storage.rerun(row.id, T0 + 3)
        expect(outcome).toMatchObject({
          rerunFrom: from,
          descendants: [],
          row: {
            status: 'queued',
            error: null,
            failures: 0,
            finishedAt: null,
            runAt: T0 + 3,
            updatedAt: T0 + 3,
          },
        })
        expect(await storage.get(row.id)).toEqual(outcome!.row)
        expect((await storage.history(row.id)).at(-1)).toMatchObject({ at: T0 + 3, from, to: 'queued' })
        expect((await claimOne(storage, { taskIds: [row.taskId], now: T0 + 3 })).id).toBe(row.id)
      }
    })
  })
}
