import { expect } from 'vitest'
import {
  T0,
  claimOne,
  enqueueOne,
  newExecution,
  runningOne,
  stepRecord,
  storedError,
  wakeupRecord,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * The durable record: `recordSteps` (fenced by the run; a waiting record completes in place, a
 * record no longer waiting is never overwritten; a wakeup key names one wait), `loadRunState`,
 * and what `rerun` forgets of it. Signals and wake-ups from outside: signals-and-wakes.ts;
 * children: children.ts.
 */
export function stepConformance({ group, test }: ConformanceDeclarer): void {
  group('steps and waits', () => {
    test('recordSteps writes each record with a history row of its kind, completes a waiting one in place, and writes nothing for a run that is not running', async (open) => {
      const storage = await open()
      const row = await runningOne(storage)
      const charge = stepRecord(0, { name: 'charge' })
      const nap = stepRecord(1, {
        name: 'nap',
        kind: 'sleep',
        status: 'waiting',
        value: null,
        wakeAt: T0 + 1000,
      })
      expect(
        await storage.recordSteps(
          [charge, nap].map((step) => ({ executionId: row.id, run: 1, step })),
          T0 + 1,
        ),
      ).toEqual(['written', 'written'])
      expect((await storage.loadRunState(row.id)).steps).toEqual([
        { ...charge, executionId: row.id, createdAt: T0 + 1, completedAt: T0 + 1 },
        { ...nap, executionId: row.id, createdAt: T0 + 1, completedAt: null },
      ])
      // The sleep ends: its record completes, created when it was.
      expect(
        await storage.recordSteps(
          [{ executionId: row.id, run: 1, step: { ...nap, status: 'done', value: 'null' } }],
          T0 + 2,
        ),
      ).toEqual(['written'])
      expect((await storage.loadRunState(row.id)).steps[1]).toMatchObject({
        status: 'done',
        value: 'null',
        createdAt: T0 + 1,
        completedAt: T0 + 2,
      })
      const events = (await storage.history(row.id)).filter((h) => h.event !== 'status')
      expect(events.map((h) => [h.event, h.name, h.from, h.to, h.run, h.at])).toEqual([
        ['step', 'charge', 'running', 'running', 1, T0 + 1],
        ['wait', 'nap', 'running', 'running', 1, T0 + 1],
        ['wait', 'nap', 'running', 'running', 1, T0 + 2],
      ])
      // Queued again (a retry): the run's writes are stale and write nothing.
      await storage.settle(
        [{ transition: 'retry', id: row.id, run: 1, error: storedError('r'), delayMs: 0 }],
        T0 + 3,
      )
      expect(
        await storage.recordSteps([{ executionId: row.id, run: 1, step: stepRecord(2) }], T0 + 4),
      ).toEqual(['stale'])
      expect(await storage.recordSteps([], T0 + 4)).toEqual([])
      expect((await storage.loadRunState(row.id)).steps).toHaveLength(2)
    })

    test('a wakeup key held by another wait is a conflict that writes nothing; the wait holding it may write its record again', async (open) => {
      const storage = await open()
      const a = await runningOne(storage, { taskId: 'a' })
      const b = await runningOne(storage, { taskId: 'b' })
      expect(
        await storage.recordSteps([{ executionId: a.id, run: 1, step: wakeupRecord(0, 'shared') }], T0),
      ).toEqual(['written'])
      // Another execution's wait, or another wait of the same one: a conflict; the batch goes on.
      expect(
        await storage.recordSteps(
          [
            { executionId: b.id, run: 1, step: wakeupRecord(0, 'shared') },
            { executionId: a.id, run: 1, step: wakeupRecord(1, 'shared') },
            { executionId: b.id, run: 1, step: stepRecord(1) },
          ],
          T0 + 1,
        ),
      ).toEqual(['conflict', 'conflict', 'written'])
      expect((await storage.loadRunState(a.id)).steps.map((s) => s.position)).toEqual([0])
      expect((await storage.loadRunState(b.id)).steps.map((s) => s.position)).toEqual([1])
      // Its own wait again (it timed out): written, and the key still names it.
      const timedOut = {
        ...wakeupRecord(0, 'shared'),
        status: 'failed' as const,
        error: storedError('timed out'),
      }
      expect(await storage.recordSteps([{ executionId: a.id, run: 1, step: timedOut }], T0 + 2)).toEqual([
        'written',
      ])
      expect(await storage.wakeup('shared', { value: '1' }, T0 + 3)).toEqual({
        result: 'finished',
        executionId: a.id,
      })
    })

    test('recordSteps never overwrites a record that is no longer waiting (superseded), nor writes for a stale run', async (open) => {
      const storage = await open()
      const row = await enqueueOne(storage)
      await claimOne(storage)
      const step = {
        position: 0,
        name: 'w',
        kind: 'wakeup' as const,
        value: null,
        error: null,
        wakeAt: null,
        childId: null,
        signalName: null,
        wakeupKey: 'k-1',
      }
      expect(
        await storage.recordSteps(
          [{ executionId: row.id, run: 1, step: { ...step, status: 'waiting' } }],
          T0,
        ),
      ).toEqual(['written'])
      expect(await storage.wakeup('k-1', { value: '"from outside"' }, T0 + 1)).toEqual({
        result: 'woken',
        executionId: row.id,
      })
      const late = { ...step, status: 'failed' as const, error: storedError('timed out') }
      expect(await storage.recordSteps([{ executionId: row.id, run: 1, step: late }], T0 + 2)).toEqual([
        'superseded',
      ])
      expect((await storage.loadRunState(row.id)).steps[0]).toMatchObject({
        status: 'done',
        value: '"from outside"',
      })
      expect(
        await storage.recordSteps(
          [
            {
              executionId: row.id,
              run: 9,
              step: { ...step, position: 1, name: 'x', wakeupKey: null, status: 'done' },
            },
          ],
          T0 + 3,
        ),
      ).toEqual(['stale'])
      expect(await storage.wakeup('k-1', { value: '1' }, T0 + 4)).toEqual({
        result: 'finished',
        executionId: row.id,
      })
      expect(await storage.wakeup('nobody', { value: '1' }, T0 + 4)).toEqual({ result: 'not_found' })
    })

    test('rerun forgets the recorded failure its last transition names: a step deleted, a child waiting again; caught failures stay', async (open) => {
      const storage = await open()
      const row = await enqueueOne(storage, { maxAttempts: 1 })
      await claimOne(storage)
      const kid = newExecution({ taskId: 'beta', label: 'kid' })
      const base = {
        value: null,
        error: null,
        wakeAt: null,
        childId: null,
        signalName: null,
        wakeupKey: null,
      }
      const failed = storedError('failed')
      await storage.recordSteps(
        [
          {
            executionId: row.id,
            run: 1,
            step: { ...base, position: 0, name: 'caught', kind: 'step', status: 'failed', error: failed },
          },
          {
            executionId: row.id,
            run: 1,
            step: { ...base, position: 1, name: 'kid', kind: 'child', status: 'waiting', childId: kid.id },
            child: kid,
          },
          {
            executionId: row.id,
            run: 1,
            step: { ...base, position: 2, name: 'later', kind: 'step', status: 'done', value: '1' },
          },
        ],
        T0,
      )
      await storage.recordSteps(
        [
          {
            executionId: row.id,
            run: 1,
            step: {
              ...base,
              position: 1,
              name: 'kid',
              kind: 'child',
              status: 'failed',
              error: failed,
              childId: kid.id,
            },
          },
        ],
        T0 + 1,
      )
      const failedStep = { position: 1, name: 'kid' }
      expect(
        await storage.settle([{ transition: 'fail', id: row.id, run: 1, error: failed, failedStep }], T0 + 2),
      ).toEqual({ applied: [true], cancelled: [] })
      expect((await storage.history(row.id)).at(-1)).toMatchObject({ to: 'failed' })
      expect(JSON.parse((await storage.history(row.id)).at(-1)!.detail!)).toEqual({
        error: JSON.parse(failed) as unknown,
        failedStep,
      })

      const outcome = await storage.rerun(row.id, T0 + 3)
      expect(outcome?.rerunFrom).toBe('failed')
      const { steps, children } = await storage.loadRunState(row.id)
      // The child's record waits on the same child again (read afresh on replay); the caught
      // failure and the later success are kept.
      expect(steps.map((s) => [s.name, s.status, s.error, s.childId])).toEqual([
        ['caught', 'failed', failed, null],
        ['kid', 'waiting', null, kid.id],
        ['later', 'done', null, null],
      ])
      expect(children.map((c) => c.id)).toEqual([kid.id])
      expect(JSON.parse((await storage.history(row.id)).at(-1)!.detail!)).toEqual({
        transition: 'rerun',
        forgotten: failedStep,
      })

      // A step's failure that ended the run is deleted (it runs again); nothing else is.
      await claimOne(storage, { now: T0 + 3 })
      await storage.settle(
        [
          {
            transition: 'fail',
            id: row.id,
            run: 2,
            error: failed,
            failedStep: { position: 0, name: 'caught' },
          },
        ],
        T0 + 4,
      )
      await storage.rerun(row.id, T0 + 5)
      expect((await storage.loadRunState(row.id)).steps.map((s) => s.name)).toEqual(['kid', 'later'])
      // A failure that no record holds (the run threw its own error) forgets nothing.
      await claimOne(storage, { now: T0 + 5 })
      await storage.settle([{ transition: 'fail', id: row.id, run: 3, error: failed }], T0 + 6)
      await storage.rerun(row.id, T0 + 7)
      expect((await storage.loadRunState(row.id)).steps.map((s) => s.name)).toEqual(['kid', 'later'])
      expect(JSON.parse((await storage.history(row.id)).at(-1)!.detail!)).toEqual({ transition: 'rerun' })
    })
  })
}
