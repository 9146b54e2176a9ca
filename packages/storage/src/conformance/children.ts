import { expect } from 'vitest'
import { WAIT_FOREVER, type ExecutionRow } from '@ratchet/core'
import {
  LEASE_MS,
  T0,
  childRecord,
  claimOne,
  claimRequest,
  enqueueOne,
  mustGet,
  newExecution,
  recoverRequest,
  runningOne,
  storedError,
  transitions,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * Children: enqueued with the parent's record (`StepWrite.child`), their end recorded in the
 * parent's record (`parentRecord`) or read by its replay (`loadRunState().children`), and the
 * parent awaiting them woken when they end in any way (a settlement, a cancel, a deadline, a
 * used-up recovery budget). Cancelling children: cancellation.ts. A child's end racing its
 * parent's park: races-wakes.ts.
 */
export function childrenConformance({ group, test }: ConformanceDeclarer): void {
  group('children', () => {
    test("a settlement that ends a child records its outcome in its parent's waiting record (parentRecord), and nothing else", async (open) => {
      const storage = await open()
      const parent = await enqueueOne(storage, { taskId: 'alpha' })
      await claimOne(storage)
      const kids = [0, 1, 2].map((i) =>
        newExecution({ taskId: 'beta', label: `kid-${i}`, wakesParent: true, parentId: parent.id }),
      )
      const base = { value: null, error: null, wakeAt: null, signalName: null, wakeupKey: null }
      await storage.recordSteps(
        kids.map((child, i) => ({
          executionId: parent.id,
          run: 1,
          step: {
            ...base,
            position: i,
            name: `kid-${i}`,
            kind: 'child' as const,
            status: 'waiting' as const,
            childId: child.id,
          },
          child,
        })),
        T0,
      )
      await storage.settle([{ transition: 'park', id: parent.id, run: 1, runAt: WAIT_FOREVER }], T0)
      const { claimed: running } = await storage.claim(claimRequest({ taskIds: ['beta'], now: T0 + 1 }))
      expect(running).toHaveLength(3)
      const failure = JSON.stringify({ name: 'ChildExecutionError', message: 'x', retryable: false })
      const outcome = await storage.settle(
        [
          {
            transition: 'complete',
            id: kids[0]!.id,
            run: 1,
            output: '"zero"',
            wakeParentId: parent.id,
            parentRecord: { parentId: parent.id, position: 0, outcome: { status: 'done', value: '"zero"' } },
          },
          {
            transition: 'fail',
            id: kids[1]!.id,
            run: 1,
            error: storedError('broke'),
            wakeParentId: parent.id,
            parentRecord: { parentId: parent.id, position: 1, outcome: { status: 'failed', error: failure } },
          },
          // Names the wrong position (the record there waits on another child): nothing is written.
          {
            transition: 'complete',
            id: kids[2]!.id,
            run: 1,
            output: '"two"',
            wakeParentId: parent.id,
            parentRecord: { parentId: parent.id, position: 0, outcome: { status: 'done', value: '"two"' } },
          },
        ],
        T0 + 2,
      )
      expect(outcome.applied).toEqual([true, true, true])
      const { steps, children } = await storage.loadRunState(parent.id)
      expect(steps.map((s) => [s.name, s.status, s.value, s.error, s.completedAt])).toEqual([
        ['kid-0', 'done', '"zero"', null, T0 + 2],
        ['kid-1', 'failed', null, failure, T0 + 2],
        ['kid-2', 'waiting', null, null, null],
      ])
      expect(children.map((c) => c.id)).toEqual([kids[2]!.id])
      // No history row for the parent: the children's own histories have their ends.
      expect(
        (await storage.history(parent.id)).filter((h) => h.at === T0 + 2 && h.event !== 'status'),
      ).toEqual([])
      expect((await mustGet(storage, parent.id)).status).toBe('queued')
    })

    test('a consumed child is in the record: loadRunState reads only the children the record still waits for', async (open) => {
      const storage = await open()
      const parent = await enqueueOne(storage, { taskId: 'alpha' })
      await claimOne(storage)
      const kids = [
        newExecution({ taskId: 'beta', label: 'a' }),
        newExecution({ taskId: 'beta', label: 'b' }),
      ]
      const childStep = (position: number, childId: string) => ({
        position,
        name: `kid-${position}`,
        kind: 'child' as const,
        status: 'waiting' as const,
        value: null,
        error: null,
        wakeAt: null,
        childId,
        signalName: null,
        wakeupKey: null,
      })
      await storage.recordSteps(
        kids.map((child, i) => ({ executionId: parent.id, run: 1, step: childStep(i, child.id), child })),
        T0,
      )
      expect((await storage.loadRunState(parent.id)).children.map((c) => c.id).sort()).toEqual(
        kids.map((k) => k.id).sort(),
      )
      // The run saw the first child end and recorded it: the record has it, done.
      const consumed = { ...childStep(0, kids[0]!.id), status: 'done' as const, value: '"out"' }
      expect(await storage.recordSteps([{ executionId: parent.id, run: 1, step: consumed }], T0 + 1)).toEqual(
        ['written'],
      )
      const state = await storage.loadRunState(parent.id)
      expect(state.steps.map((s) => [s.name, s.status, s.value, s.childId])).toEqual([
        ['kid-0', 'done', '"out"', kids[0]!.id],
        ['kid-1', 'waiting', null, kids[1]!.id],
      ])
      expect(state.children.map((c) => c.id)).toEqual([kids[1]!.id])
    })

    test('a child written with its record is enqueued in the same transaction, with its history row; a stale write enqueues nothing', async (open) => {
      const storage = await open()
      const root = await runningOne(storage)
      const child = newExecution({ taskId: 'beta', parentId: root.id, rootId: root.id, wakesParent: true })
      expect(
        await storage.recordSteps(
          [{ executionId: root.id, run: 1, step: childRecord(0, child.id), child }],
          T0 + 1,
        ),
      ).toEqual(['written'])
      expect(await mustGet(storage, child.id)).toMatchObject({
        status: 'queued',
        parentId: root.id,
        rootId: root.id,
        wakesParent: 1,
        createdAt: T0 + 1,
      })
      expect(await storage.history(child.id)).toEqual([
        expect.objectContaining({ at: T0 + 1, from: null, to: 'queued', run: 0, event: 'status' }),
      ])
      const state = await storage.loadRunState(root.id)
      expect(state.steps.map((s) => [s.kind, s.status, s.childId])).toEqual([['child', 'waiting', child.id]])
      expect(state.children).toEqual([{ id: child.id, status: 'queued', output: null, error: null }])
      // A stale run's write enqueues nothing.
      const orphan = newExecution({ taskId: 'beta', parentId: root.id, rootId: root.id, wakesParent: true })
      expect(
        await storage.recordSteps(
          [{ executionId: root.id, run: 2, step: childRecord(1, orphan.id), child: orphan }],
          T0 + 2,
        ),
      ).toEqual(['stale'])
      expect(await storage.get(orphan.id)).toBeUndefined()
      expect(await storage.list({ rootId: root.id, limit: 10 })).toHaveLength(2)
    })

    test("a child's end wakes the parent awaiting it: a waiting parent at once, a running one at its park", async (open) => {
      const storage = await open()
      const parents = [
        await runningOne(storage, { taskId: 'waits' }),
        await runningOne(storage, { taskId: 'runs' }),
      ]
      const kids = parents.map((parent) =>
        newExecution({ taskId: 'kid', parentId: parent.id, rootId: parent.id, wakesParent: true }),
      )
      await storage.recordSteps(
        kids.map((child, i) => ({
          executionId: parents[i]!.id,
          run: 1,
          step: childRecord(0, child.id),
          child,
        })),
        T0,
      )
      const [waits, runs] = parents as [ExecutionRow, ExecutionRow]
      await storage.settle([{ transition: 'park', id: waits.id, run: 1, runAt: WAIT_FOREVER }], T0)
      expect((await storage.claim(claimRequest({ taskIds: ['kid'], now: T0 + 1 }))).claimed).toHaveLength(2)
      // A child that does not end (a retry) wakes nobody.
      expect(
        await storage.settle(
          [
            {
              transition: 'retry',
              id: kids[0]!.id,
              run: 1,
              error: storedError('r'),
              delayMs: 0,
              wakeParentId: waits.id,
            },
          ],
          T0 + 1,
        ),
      ).toEqual({ applied: [true], cancelled: [] })
      expect((await mustGet(storage, waits.id)).status).toBe('waiting')
      await claimOne(storage, { taskIds: ['kid'], now: T0 + 1 })
      expect(
        await storage.settle(
          [
            { transition: 'complete', id: kids[0]!.id, run: 2, output: '1', wakeParentId: waits.id },
            { transition: 'fail', id: kids[1]!.id, run: 1, error: storedError('f'), wakeParentId: runs.id },
          ],
          T0 + 2,
        ),
      ).toEqual({ applied: [true, true], cancelled: [] })
      expect(await mustGet(storage, waits.id)).toMatchObject({ status: 'queued', runAt: T0 + 2 })
      expect((await storage.history(waits.id)).at(-1)).toMatchObject({
        at: T0 + 2,
        from: 'waiting',
        to: 'queued',
      })
      expect((await mustGet(storage, runs.id)).status).toBe('running')
      // The running parent was woken while it ran: its park requeues it at once instead of waiting.
      expect(
        await storage.settle([{ transition: 'park', id: runs.id, run: 1, runAt: WAIT_FOREVER }], T0 + 3),
      ).toEqual({ applied: [true], cancelled: [] })
      expect(await mustGet(storage, runs.id)).toMatchObject({ status: 'queued', runAt: T0 + 3 })
      expect((await transitions(storage, runs.id)).slice(2)).toEqual([['running', 'queued']])
      for (const parent of parents)
        expect((await claimOne(storage, { taskIds: [parent.taskId], now: T0 + 3 })).id).toBe(parent.id)
    })

    test('cancelling a child the parent awaits wakes the waiting parent; cancelling a spawned one does not', async (open) => {
      const storage = await open()
      const parent = await runningOne(storage)
      const awaited = await enqueueOne(storage, {
        taskId: 'kid',
        parentId: parent.id,
        rootId: parent.id,
        wakesParent: true,
      })
      const spawned = await enqueueOne(storage, { taskId: 'kid', parentId: parent.id, rootId: parent.id })
      await storage.settle([{ transition: 'park', id: parent.id, run: 1, runAt: WAIT_FOREVER }], T0)
      expect((await storage.cancel(spawned.id, T0 + 1, storedError('by hand')))?.cancelledFrom).toBe('queued')
      expect((await mustGet(storage, parent.id)).status).toBe('waiting')
      expect((await storage.cancel(awaited.id, T0 + 2, storedError('by hand')))?.cancelledFrom).toBe('queued')
      expect(await mustGet(storage, parent.id)).toMatchObject({ status: 'queued', runAt: T0 + 2 })
      // A waiting execution is cancelled like any other (its awaited children with it).
      await claimOne(storage, { now: T0 + 2 })
      await storage.settle([{ transition: 'park', id: parent.id, run: 2, runAt: WAIT_FOREVER }], T0 + 3)
      expect(await storage.cancel(parent.id, T0 + 4, storedError('by hand'))).toMatchObject({
        cancelledFrom: 'waiting',
        descendants: [],
        row: { status: 'cancelled', finishedAt: T0 + 4 },
      })
    })

    test('an awaited child that housekeep times out at its deadline wakes its waiting parent', async (open) => {
      const storage = await open()
      const parent = await runningOne(storage)
      const child = await enqueueOne(storage, {
        taskId: 'kid',
        parentId: parent.id,
        rootId: parent.id,
        wakesParent: true,
        runAt: T0 + 10_000,
        deadlineAt: T0 + 100,
      })
      await storage.settle([{ transition: 'park', id: parent.id, run: 1, runAt: WAIT_FOREVER }], T0)
      const { changed } = await storage.housekeep(T0 + 100, 10)
      expect(changed).toContainEqual({ id: child.id, taskId: 'kid', from: 'queued', to: 'timed_out', run: 0 })
      expect(await mustGet(storage, parent.id)).toMatchObject({ status: 'queued', runAt: T0 + 100 })
    })

    test('an awaited child that used up its recovery budget wakes its waiting parent', async (open) => {
      const storage = await open()
      const parent = await runningOne(storage)
      const child = await enqueueOne(storage, {
        taskId: 'kid',
        parentId: parent.id,
        rootId: parent.id,
        wakesParent: true,
        maxRecoveries: 0,
      })
      await claimOne(storage, { taskIds: ['kid'] })
      await storage.settle([{ transition: 'park', id: parent.id, run: 1, runAt: WAIT_FOREVER }], T0)
      const now = T0 + LEASE_MS + 1
      expect(await storage.recoverLeases(recoverRequest({ now }))).toEqual([
        expect.objectContaining({ id: child.id, status: 'failed' }),
      ])
      expect(await mustGet(storage, parent.id)).toMatchObject({ status: 'queued', runAt: now })
    })
  })
}
