import { expect } from 'vitest'
import { newExecutionId, type NewExecution, type Storage } from '@ratchet/core'
import { BACKOFF, T0, type ConformanceDeclarer } from './fixtures'

/**
 * The `continue` settlement (`ctx.continueAsNew`): the next generation starts with a new input
 * and a fresh record and history (its own retention, in effect), unconsumed signals kept.
 */
export function continueConformance({ group, test }: ConformanceDeclarer): void {
  group('continue as new', () => {
    const execution = (overrides: Partial<NewExecution> = {}): NewExecution => ({
      id: newExecutionId(T0),
      taskId: 'alpha',
      input: '{"n":1}',
      maxAttempts: 3,
      maxRecoveries: 5,
      timeoutMs: 60_000,
      backoff: BACKOFF,
      priority: 0,
      idempotencyKey: null,
      runAt: T0,
      ...overrides,
    })
    const claim = async (storage: Storage, taskId: string, now: number) => {
      const { claimed } = await storage.claim({
        owner: 'w',
        now,
        leaseMs: 30_000,
        limit: 1,
        taskIds: [taskId],
      })
      expect(claimed).toHaveLength(1)
      return claimed[0]!
    }
    const step = (position: number, name: string) => ({
      position,
      name,
      kind: 'step' as const,
      status: 'done' as const,
      value: '1',
      error: null,
      wakeAt: null,
      childId: null,
      signalName: null,
      wakeupKey: null,
    })

    test('continue starts the next generation: new input, fresh record and history, unconsumed signals kept', async (open) => {
      const storage = await open()
      const { id } = execution()
      await storage.enqueue([{ ...execution(), id }], T0)
      await storage.signal(id, 'taken', '"a"', T0)
      await storage.signal(id, 'kept', '"b"', T0)
      // a failed attempt first: continue resets failures
      let run = await claim(storage, 'alpha', T0 + 1)
      await storage.settle(
        [{ transition: 'retry', id, run: run.runs, error: '{"message":"x"}', delayMs: 0 }],
        T0 + 1,
      )
      run = await claim(storage, 'alpha', T0 + 2)
      const taken = (await storage.loadRunState(id)).inbox.find((s) => s.name === 'taken')!
      await storage.recordSteps(
        [
          { executionId: id, run: run.runs, step: step(0, 'one') },
          {
            executionId: id,
            run: run.runs,
            step: { ...step(1, 'sig'), kind: 'signal', signalName: 'taken' },
            consumeSignalSeq: taken.seq,
          },
        ],
        T0 + 2,
      )
      // a stale run changes nothing
      expect(
        (await storage.settle([{ transition: 'continue', id, run: run.runs - 1, input: '{"n":9}' }], T0 + 3))
          .applied,
      ).toEqual([false])
      expect(
        (await storage.settle([{ transition: 'continue', id, run: run.runs, input: '{"n":2}' }], T0 + 3))
          .applied,
      ).toEqual([true])

      expect(await storage.get(id)).toMatchObject({
        status: 'queued',
        input: '{"n":2}',
        generation: 1,
        failures: 0,
        recoveries: 0,
        error: null,
        runs: run.runs,
        runAt: T0 + 3,
        leaseOwner: null,
        finishedAt: null,
      })
      const history = await storage.history(id)
      expect(history).toHaveLength(1)
      expect(history[0]).toMatchObject({ from: 'running', to: 'queued', run: run.runs, event: 'status' })
      expect(JSON.parse(history[0]!.detail!)).toEqual({ transition: 'continue', generation: 1 })
      const state = await storage.loadRunState(id)
      expect(state.steps).toEqual([])
      expect(state.inbox.map((s) => s.name)).toEqual(['kept'])

      // the next generation claims and records from position 0 again
      const next = await claim(storage, 'alpha', T0 + 4)
      expect(next).toMatchObject({ generation: 1, input: '{"n":2}', runs: run.runs + 1 })
      expect(
        await storage.recordSteps([{ executionId: id, run: next.runs, step: step(0, 'one') }], T0 + 4),
      ).toEqual(['written'])
    })

    test('continue with cancelChildren cancels the unfinished children it awaited, not the spawned ones', async (open) => {
      const storage = await open()
      const parent = execution()
      await storage.enqueue([parent], T0)
      const run = await claim(storage, 'alpha', T0)
      const awaited = execution({ taskId: 'beta', parentId: parent.id, rootId: parent.id, wakesParent: true })
      const spawned = execution({ taskId: 'beta', parentId: parent.id, rootId: parent.id })
      await storage.enqueue([awaited, spawned], T0)
      const { applied, cancelled } = await storage.settle(
        [
          {
            transition: 'continue',
            id: parent.id,
            run: run.runs,
            input: '{"n":2}',
            cancelChildren: { error: '{"name":"ParentEndedError","message":"x","code":"PARENT_ENDED"}' },
          },
        ],
        T0 + 1,
      )
      expect(applied).toEqual([true])
      expect(cancelled.map((c) => c.id)).toEqual([awaited.id])
      expect(await storage.get(awaited.id)).toMatchObject({ status: 'cancelled' })
      expect(await storage.get(spawned.id)).toMatchObject({ status: 'queued' })
      expect(await storage.get(parent.id)).toMatchObject({ status: 'queued', generation: 1 })
    })
  })
}
