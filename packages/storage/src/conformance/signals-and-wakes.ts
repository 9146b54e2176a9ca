import { expect } from 'vitest'
import { newExecutionId, WAIT_FOREVER } from '@ratchet/core'
import {
  T0,
  claimOne,
  enqueueOne,
  mustGet,
  runningOne,
  stepRecord,
  storedError,
  transitions,
  wakeupRecord,
  type ConformanceDeclarer,
} from './fixtures'

const HOUR = 3_600_000

/**
 * What wakes an execution from outside: `signal` (stored in its inbox, taken by a step that
 * consumes it) and `wakeup` (completes the wait registered under a key). Either one requeues a
 * waiting execution at once; one that reaches it while it runs is kept, and its next park
 * requeues it instead of waiting (no wake-up is lost between a run's last read and its park).
 * The same wakes racing the park over two connections: races-wakes.ts.
 */
export function signalAndWakeConformance({ group, test }: ConformanceDeclarer): void {
  group('signals and wake-ups', () => {
    test('signal stores the signal in the inbox with a history row, in seq order; an unknown execution is not_found, a finished one takes none', async (open) => {
      const storage = await open()
      expect(await storage.signal(newExecutionId(T0), 'go', '1', T0)).toEqual({ result: 'not_found' })
      const row = await enqueueOne(storage)
      const first = await storage.signal(row.id, 'go', '{"n":1}', T0 + 1)
      expect(first).toMatchObject({ result: 'stored', row: { id: row.id, status: 'queued' } })
      const second = await storage.signal(row.id, 'stop', '{"n":2}', T0 + 2)
      const [a, b] = [first, second].map((o) => (o as { seq: number }).seq) as [number, number]
      expect(b).toBeGreaterThan(a)
      expect((await storage.loadRunState(row.id)).inbox).toEqual([
        { seq: a, executionId: row.id, name: 'go', payload: '{"n":1}', createdAt: T0 + 1, consumedBy: null },
        {
          seq: b,
          executionId: row.id,
          name: 'stop',
          payload: '{"n":2}',
          createdAt: T0 + 2,
          consumedBy: null,
        },
      ])
      const signals = (await storage.history(row.id)).filter((h) => h.event === 'signal')
      expect(signals.map((h) => [h.name, h.at, h.from, h.to, h.run])).toEqual([
        ['go', T0 + 1, 'queued', 'queued', 0],
        ['stop', T0 + 2, 'queued', 'queued', 0],
      ])
      // A queued execution has nothing to wake.
      expect(await transitions(storage, row.id)).toEqual([[null, 'queued']])
      await claimOne(storage, { now: T0 + 3 })
      await storage.settle([{ transition: 'complete', id: row.id, run: 1, output: '1' }], T0 + 4)
      expect(await storage.signal(row.id, 'late', '1', T0 + 5)).toEqual({
        result: 'finished',
        status: 'completed',
      })
      expect((await storage.loadRunState(row.id)).inbox.map((s) => s.name)).toEqual(['go', 'stop'])
    })

    test('a signal wakes a waiting execution at once: waiting → queued, due now', async (open) => {
      const storage = await open()
      const row = await runningOne(storage)
      await storage.settle([{ transition: 'park', id: row.id, run: 1, runAt: T0 + HOUR }], T0)
      expect(await storage.signal(row.id, 'go', '1', T0 + 5)).toMatchObject({
        result: 'stored',
        row: { id: row.id, status: 'queued', runAt: T0 + 5 },
      })
      expect(await mustGet(storage, row.id)).toMatchObject({
        status: 'queued',
        runAt: T0 + 5,
        updatedAt: T0 + 5,
      })
      const last = (await storage.history(row.id, { statusOnly: true })).at(-1)!
      expect(last).toMatchObject({ at: T0 + 5, from: 'waiting', to: 'queued', run: 1 })
      expect(JSON.parse(last.detail!)).toMatchObject({ transition: 'wake' })
      expect((await claimOne(storage, { now: T0 + 5 })).id).toBe(row.id)
    })

    test('a signal to a running execution is kept for its park: the park requeues it at once instead of waiting', async (open) => {
      const storage = await open()
      const row = await runningOne(storage)
      expect(await storage.signal(row.id, 'go', '1', T0 + 1)).toMatchObject({
        result: 'stored',
        row: { status: 'running' },
      })
      // No transition while it runs.
      expect(await transitions(storage, row.id)).toEqual([
        [null, 'queued'],
        ['queued', 'running'],
      ])
      expect(
        await storage.settle([{ transition: 'park', id: row.id, run: 1, runAt: WAIT_FOREVER }], T0 + 2),
      ).toEqual({ applied: [true], cancelled: [] })
      expect(await mustGet(storage, row.id)).toMatchObject({ status: 'queued', runAt: T0 + 2 })
      const last = (await storage.history(row.id, { statusOnly: true })).at(-1)!
      expect(last).toMatchObject({ at: T0 + 2, from: 'running', to: 'queued', run: 1 })
      expect(JSON.parse(last.detail!)).toMatchObject({ transition: 'park', woken: true })
      // The kept wake is used up: the next run's park waits.
      await claimOne(storage, { now: T0 + 2 })
      await storage.settle([{ transition: 'park', id: row.id, run: 2, runAt: WAIT_FOREVER }], T0 + 3)
      expect((await mustGet(storage, row.id)).status).toBe('waiting')
    })

    test('a step that consumes a signal takes it out of the inbox; the others stay, and a stale write consumes nothing', async (open) => {
      const storage = await open()
      const row = await runningOne(storage)
      for (const [name, payload] of [
        ['go', '1'],
        ['go', '2'],
        ['other', '3'],
      ])
        await storage.signal(row.id, name!, payload!, T0)
      const [first] = (await storage.loadRunState(row.id)).inbox
      const taken = stepRecord(0, { name: 'go', kind: 'signal', signalName: 'go', value: '1' })
      expect(
        await storage.recordSteps(
          [{ executionId: row.id, run: 1, step: taken, consumeSignalSeq: first!.seq }],
          T0 + 1,
        ),
      ).toEqual(['written'])
      const state = await storage.loadRunState(row.id)
      expect(state.inbox.map((s) => [s.name, s.payload])).toEqual([
        ['go', '2'],
        ['other', '3'],
      ])
      expect(state.steps).toEqual([{ ...taken, executionId: row.id, createdAt: T0 + 1, completedAt: T0 + 1 }])
      const stale = { ...taken, position: 1 }
      expect(
        await storage.recordSteps(
          [{ executionId: row.id, run: 2, step: stale, consumeSignalSeq: state.inbox[0]!.seq }],
          T0 + 2,
        ),
      ).toEqual(['stale'])
      expect((await storage.loadRunState(row.id)).inbox).toEqual(state.inbox)
    })

    test('wakeup completes the wait with a value or an error and wakes the execution; a waiting record of a finished execution is left alone', async (open) => {
      const storage = await open()
      const [ok, bad, runs, gone] = [
        await runningOne(storage, { taskId: 'ok' }),
        await runningOne(storage, { taskId: 'bad' }),
        await runningOne(storage, { taskId: 'runs' }),
        await runningOne(storage, { taskId: 'gone' }),
      ]
      for (const row of [ok, bad, runs, gone]) {
        const key = `k-${row.taskId}`
        expect(
          await storage.recordSteps([{ executionId: row.id, run: 1, step: wakeupRecord(0, key) }], T0),
        ).toEqual(['written'])
      }
      for (const row of [ok, bad])
        await storage.settle([{ transition: 'park', id: row.id, run: 1, runAt: T0 + HOUR }], T0)
      await storage.cancel(gone.id, T0, storedError('cancelled'))

      const error = storedError('declined')
      expect(await storage.wakeup('k-ok', { value: '{"v":1}' }, T0 + 1)).toEqual({
        result: 'woken',
        executionId: ok.id,
      })
      expect(await storage.wakeup('k-bad', { error }, T0 + 1)).toEqual({
        result: 'woken',
        executionId: bad.id,
      })
      expect((await storage.loadRunState(ok.id)).steps[0]).toMatchObject({
        status: 'done',
        value: '{"v":1}',
        error: null,
        completedAt: T0 + 1,
      })
      expect((await storage.loadRunState(bad.id)).steps[0]).toMatchObject({
        status: 'failed',
        value: null,
        error,
        completedAt: T0 + 1,
      })
      for (const row of [ok, bad]) {
        expect(await mustGet(storage, row.id)).toMatchObject({ status: 'queued', runAt: T0 + 1 })
        const wakeups = (await storage.history(row.id)).filter((h) => h.event === 'wakeup')
        expect(wakeups.map((h) => [h.name, h.at])).toEqual([['w0', T0 + 1]])
      }
      // While it runs: the record completes now, and the park requeues it.
      expect(await storage.wakeup('k-runs', { value: '1' }, T0 + 1)).toEqual({
        result: 'woken',
        executionId: runs.id,
      })
      expect((await storage.loadRunState(runs.id)).steps[0]).toMatchObject({ status: 'done', value: '1' })
      await storage.settle([{ transition: 'park', id: runs.id, run: 1, runAt: T0 + HOUR }], T0 + 2)
      expect((await mustGet(storage, runs.id)).status).toBe('queued')
      // Already completed, or its execution finished: nothing written.
      expect(await storage.wakeup('k-ok', { value: '2' }, T0 + 2)).toEqual({
        result: 'finished',
        executionId: ok.id,
      })
      expect(await storage.wakeup('k-gone', { value: '2' }, T0 + 2)).toEqual({
        result: 'finished',
        executionId: gone.id,
      })
      expect((await storage.loadRunState(gone.id)).steps[0]).toMatchObject({ status: 'waiting', value: null })
      expect(await storage.wakeup('nobody', { value: '1' }, T0 + 2)).toEqual({ result: 'not_found' })
    })
  })
}
