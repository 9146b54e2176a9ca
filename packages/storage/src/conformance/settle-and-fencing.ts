import { expect } from 'vitest'
import { newExecutionId, type Settlement, type Storage } from '@ratchet/core'
import {
  LEASE_MS,
  T0,
  WORKER_B,
  claimOne,
  claimRequest,
  enqueueOne,
  mustGet,
  storedError,
  type ConformanceDeclarer,
  type ExecutionOverrides,
} from './fixtures'

/**
 * `settle`: each transition of a finished run (complete, retry, release, park, fail,
 * time_out), written fenced by (id, run, status running): a stale run, or an execution that is
 * not running, writes nothing and reports `false`, settlement by settlement within a batch.
 * The fence racing a recovery or a cancel over two connections: races-fences.ts.
 */
export function settleConformance({ group, test }: ConformanceDeclarer): void {
  group('settle', () => {
    async function running(storage: Storage, overrides: ExecutionOverrides = {}) {
      const queued = await enqueueOne(storage, overrides)
      const rows = (await storage.claim(claimRequest({ limit: 1, taskIds: [queued.taskId] }))).claimed
      expect(rows.map((r) => r.id)).toEqual([queued.id])
      return rows[0]!
    }
    const historyAfter = async (storage: Storage, id: string) => (await storage.history(id)).slice(2)

    test('complete stores the output, finishes the execution and clears its lease', async (open) => {
      const storage = await open()
      const row = await running(storage)
      const now = T0 + 500
      expect(
        await storage.settle([{ transition: 'complete', id: row.id, run: 1, output: '{"ok":true}' }], now),
      ).toEqual({ applied: [true], cancelled: [] })
      expect(await storage.get(row.id)).toEqual({
        ...row,
        status: 'completed',
        output: '{"ok":true}',
        error: null,
        leaseOwner: null,
        leaseExpiresAt: null,
        updatedAt: now,
        finishedAt: now,
      })
      expect(await historyAfter(storage, row.id)).toEqual([
        expect.objectContaining({ at: now, from: 'running', to: 'completed', run: 1 }),
      ])
    })

    test('complete after a retried attempt clears the previous error', async (open) => {
      const storage = await open()
      const row = await running(storage)
      await storage.settle(
        [{ transition: 'retry', id: row.id, run: 1, error: storedError('first'), delayMs: 0 }],
        T0,
      )
      await claimOne(storage)
      expect(
        await storage.settle([{ transition: 'complete', id: row.id, run: 2, output: '1' }], T0 + 1),
      ).toEqual({ applied: [true], cancelled: [] })
      expect(await mustGet(storage, row.id)).toMatchObject({
        status: 'completed',
        output: '1',
        error: null,
        runs: 2,
        failures: 1,
      })
    })

    for (const transition of ['retry', 'release'] as const) {
      test(`${transition} requeues the execution, due after its delay from the write, with the error`, async (open) => {
        const storage = await open()
        const row = await running(storage)
        const now = T0 + 500
        const error = storedError(`${transition} me`)
        // A retry is due delayMs after the settlement is written; a release at once.
        const settlement: Settlement =
          transition === 'retry'
            ? { transition, id: row.id, run: 1, error, delayMs: 2000 }
            : { transition, id: row.id, run: 1, error }
        const due = transition === 'retry' ? now + 2000 : now
        expect(await storage.settle([settlement], now)).toEqual({ applied: [true], cancelled: [] })
        expect(await storage.get(row.id)).toEqual({
          ...row,
          status: 'queued',
          error,
          runAt: due,
          leaseOwner: null,
          leaseExpiresAt: null,
          updatedAt: now,
          // a retry is a failed attempt; a release (shutdown) is not
          failures: transition === 'retry' ? 1 : 0,
        })
        const history = await historyAfter(storage, row.id)
        expect(history).toEqual([expect.objectContaining({ at: now, from: 'running', to: 'queued', run: 1 })])
        expect(JSON.parse(history[0]!.detail!)).toMatchObject({
          transition,
          runAt: due,
          error: JSON.parse(error) as unknown,
        })
        expect((await storage.claim(claimRequest({ now: due - 1 }))).claimed).toEqual([])
        expect(await claimOne(storage, { now: due })).toMatchObject({ id: row.id, runs: 2 })
      })
    }

    for (const [transition, status] of [
      ['fail', 'failed'],
      ['time_out', 'timed_out'],
    ] as const) {
      test(`${transition} stores the error and ends the execution ${status}`, async (open) => {
        const storage = await open()
        const row = await running(storage)
        const now = T0 + 700
        const error = storedError(`${transition}!`)
        expect(await storage.settle([{ transition, id: row.id, run: 1, error }], now)).toEqual({
          applied: [true],
          cancelled: [],
        })
        expect(await storage.get(row.id)).toEqual({
          ...row,
          status,
          error,
          leaseOwner: null,
          leaseExpiresAt: null,
          updatedAt: now,
          finishedAt: now,
          failures: 1,
        })
        const history = await historyAfter(storage, row.id)
        expect(history).toEqual([expect.objectContaining({ at: now, from: 'running', to: status, run: 1 })])
        expect(JSON.parse(history[0]!.detail!)).toMatchObject({ error: JSON.parse(error) as unknown })
        expect((await storage.claim(claimRequest({ now: now + LEASE_MS }))).claimed).toEqual([])
      })
    }

    test('a settlement from a stale run returns false and changes nothing', async (open) => {
      const storage = await open()
      const row = await running(storage)
      await storage.settle(
        [{ transition: 'retry', id: row.id, run: 1, error: storedError('x'), delayMs: 0 }],
        T0,
      )
      await claimOne(storage, { owner: WORKER_B })
      const before = await mustGet(storage, row.id)
      const historyBefore = await storage.history(row.id)
      const stale: Settlement[] = [
        { transition: 'complete', id: row.id, run: 1, output: '"late"' },
        { transition: 'retry', id: row.id, run: 1, error: storedError('late'), delayMs: 5 },
        { transition: 'release', id: row.id, run: 1, error: storedError('late') },
        { transition: 'fail', id: row.id, run: 1, error: storedError('late') },
        { transition: 'time_out', id: row.id, run: 1, error: storedError('late') },
      ]
      for (const settlement of stale)
        expect(await storage.settle([settlement], T0 + 50)).toEqual({ applied: [false], cancelled: [] })
      expect(await storage.get(row.id)).toEqual(before)
      expect(await storage.history(row.id)).toEqual(historyBefore)
    })

    test('a settlement of an execution that is not running returns false', async (open) => {
      const storage = await open()
      const queued = await enqueueOne(storage, { taskId: 'idle' })
      expect(
        await storage.settle([{ transition: 'complete', id: queued.id, run: 0, output: '1' }], T0),
      ).toEqual({ applied: [false], cancelled: [] })
      const row = await running(storage)
      await storage.cancel(row.id, T0 + 1, storedError('cancelled'))
      expect(
        await storage.settle([{ transition: 'complete', id: row.id, run: 1, output: '1' }], T0 + 2),
      ).toEqual({ applied: [false], cancelled: [] })
      expect(await mustGet(storage, row.id)).toMatchObject({ status: 'cancelled', output: null })
      expect(
        await storage.settle([{ transition: 'complete', id: newExecutionId(T0), run: 1, output: '1' }], T0),
      ).toEqual({ applied: [false], cancelled: [] })
      expect(await mustGet(storage, queued.id)).toEqual(queued)
    })

    test('a settlement of a finished execution returns false', async (open) => {
      const storage = await open()
      const row = await running(storage)
      expect(await storage.settle([{ transition: 'complete', id: row.id, run: 1, output: '1' }], T0)).toEqual(
        { applied: [true], cancelled: [] },
      )
      const done = await mustGet(storage, row.id)
      expect(
        await storage.settle(
          [{ transition: 'fail', id: row.id, run: 1, error: storedError('again') }],
          T0 + 1,
        ),
      ).toEqual({ applied: [false], cancelled: [] })
      expect(await storage.get(row.id)).toEqual(done)
    })

    test('settle writes a batch and reports each fence on its own', async (open) => {
      const storage = await open()
      const a = await running(storage, { label: 'a' })
      const b = await running(storage, { label: 'b' })
      const results = await storage.settle(
        [
          { transition: 'complete', id: a.id, run: 1, output: '"a"' },
          { transition: 'complete', id: b.id, run: 2, output: '"stale"' },
          { transition: 'fail', id: b.id, run: 1, error: storedError('b') },
        ],
        T0 + 1,
      )
      expect(results).toEqual({ applied: [true, false, true], cancelled: [] })
      expect(await mustGet(storage, a.id)).toMatchObject({ status: 'completed', output: '"a"' })
      expect(await mustGet(storage, b.id)).toMatchObject({ status: 'failed', output: null })
    })

    test('settle of an empty batch returns an empty list', async (open) => {
      const storage = await open()
      expect(await storage.settle([], T0)).toEqual({ applied: [], cancelled: [] })
    })

    test('park moves the execution to waiting until runAt and clears its lease; a stale park changes nothing', async (open) => {
      const storage = await open()
      const row = await running(storage)
      const now = T0 + 500
      expect(
        await storage.settle([{ transition: 'park', id: row.id, run: 2, runAt: T0 + 5_000 }], now),
      ).toEqual({ applied: [false], cancelled: [] })
      expect(await storage.get(row.id)).toEqual(row)
      expect(
        await storage.settle([{ transition: 'park', id: row.id, run: 1, runAt: T0 + 5_000 }], now),
      ).toEqual({ applied: [true], cancelled: [] })
      expect(await storage.get(row.id)).toEqual({
        ...row,
        status: 'waiting',
        runAt: T0 + 5_000,
        leaseOwner: null,
        leaseExpiresAt: null,
        updatedAt: now,
      })
      const history = await historyAfter(storage, row.id)
      expect(history).toEqual([expect.objectContaining({ at: now, from: 'running', to: 'waiting', run: 1 })])
      expect(JSON.parse(history[0]!.detail!)).toMatchObject({ transition: 'park', wakeAt: T0 + 5_000 })
      // Waiting is not claimable, even when its time has come (housekeep requeues it).
      expect((await storage.claim(claimRequest({ now: T0 + 10_000 }))).claimed).toEqual([])
    })
  })
}
