import { expect } from 'vitest'
import { WAIT_FOREVER, type Settlement } from '@ratchet/core'
import {
  LEASE_MS,
  T0,
  WORKER_A,
  WORKER_B,
  claimOne,
  claimRequest,
  enqueueOne,
  exhaustedError,
  firstRecovery,
  mustGet,
  recoverRequest,
  storedError,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * Leases: `extendLeases` (the heartbeat; returns the leases this owner lost) and
 * `recoverLeases` (runs lost to a crash go back to queued without counting a failure, up to
 * `maxRecoveries` in a row, counted afresh when the lost run made progress; past it the
 * execution fails). A recovery racing the run's own writes: races-fences.ts.
 */
export function leaseConformance({ group, test }: ConformanceDeclarer): void {
  group('leases', () => {
    test('extendLeases pushes out the leases this owner holds', async (open) => {
      const storage = await open()
      const a = await enqueueOne(storage)
      const b = await enqueueOne(storage)
      await storage.claim(claimRequest())
      const later = T0 + LEASE_MS / 2
      expect(
        await storage.extendLeases(
          WORKER_A,
          [a, b].map(({ id }) => ({ id, run: 1 })),
          later,
          LEASE_MS,
        ),
      ).toEqual([])
      for (const { id } of [a, b])
        expect(await mustGet(storage, id)).toMatchObject({
          leaseOwner: WORKER_A,
          leaseExpiresAt: later + LEASE_MS,
        })
      expect(
        await storage.recoverLeases(
          recoverRequest({ now: T0 + LEASE_MS + 1, error: storedError('expired'), limit: 10 }),
        ),
      ).toEqual([])
    })

    test('extendLeases returns leases lost to another owner, a newer run or a cancel', async (open) => {
      const storage = await open()
      const foreign = await enqueueOne(storage, { taskId: 'foreign' })
      await claimOne(storage, { owner: WORKER_B, taskIds: ['foreign'] })
      const retried = await enqueueOne(storage, { taskId: 'retried' })
      await claimOne(storage, { taskIds: ['retried'] })
      await storage.settle(
        [{ transition: 'retry', id: retried.id, run: 1, error: storedError('r'), delayMs: 0 }],
        T0,
      )
      await claimOne(storage, { taskIds: ['retried'] })
      const cancelled = await enqueueOne(storage, { taskId: 'cancelled' })
      await claimOne(storage, { taskIds: ['cancelled'] })
      await storage.cancel(cancelled.id, T0, storedError('cancelled'))
      const kept = await enqueueOne(storage, { taskId: 'kept' })
      await claimOne(storage, { taskIds: ['kept'] })
      const queued = await enqueueOne(storage, { taskId: 'queued' })

      const refs = [foreign, retried, cancelled, kept, queued].map(({ id }) => ({ id, run: 1 }))
      const lost = await storage.extendLeases(WORKER_A, refs, T0 + 1000, LEASE_MS)
      expect([...lost].sort((x, y) => x.id.localeCompare(y.id))).toEqual([
        { id: foreign.id, run: 1 },
        { id: retried.id, run: 1 },
        { id: cancelled.id, run: 1 },
        { id: queued.id, run: 1 },
      ])
      expect(await mustGet(storage, foreign.id)).toMatchObject({
        leaseOwner: WORKER_B,
        leaseExpiresAt: T0 + LEASE_MS,
      })
      expect(await mustGet(storage, retried.id)).toMatchObject({ runs: 2, leaseExpiresAt: T0 + LEASE_MS })
      expect(await mustGet(storage, cancelled.id)).toMatchObject({
        status: 'cancelled',
        leaseOwner: null,
        leaseExpiresAt: null,
      })
      expect(await mustGet(storage, kept.id)).toMatchObject({
        leaseOwner: WORKER_A,
        leaseExpiresAt: T0 + 1000 + LEASE_MS,
      })
      expect(await storage.extendLeases(WORKER_A, [], T0, LEASE_MS)).toEqual([])
    })

    test('recoverLeases requeues a run lost to a crash without counting a failure', async (open) => {
      const storage = await open()
      // maxAttempts 1: a lost run is not a failed attempt, so even the last attempt is recovered.
      const queued = await enqueueOne(storage, { maxAttempts: 1 })
      await claimOne(storage)
      const error = storedError('lease expired')
      // The lease is valid up to and including its expiry time.
      expect(await storage.recoverLeases(recoverRequest({ now: T0 + LEASE_MS, error }))).toEqual([])
      const now = T0 + LEASE_MS + 1
      expect(await storage.recoverLeases(recoverRequest({ now, error }))).toEqual([
        firstRecovery(queued.id, 'alpha'),
      ])
      expect(await mustGet(storage, queued.id)).toMatchObject({
        status: 'queued',
        runs: 1,
        failures: 0,
        recoveries: 1,
        // the execution's error is its last failure's (none): why a run was lost is in the history
        error: null,
        runAt: now,
        leaseOwner: null,
        leaseExpiresAt: null,
        updatedAt: now,
        finishedAt: null,
      })
      const history = await storage.history(queued.id)
      expect(history.at(-1)).toMatchObject({ at: now, from: 'running', to: 'queued', run: 1 })
      expect(JSON.parse(history.at(-1)!.detail!)).toEqual({
        transition: 'recover',
        error: JSON.parse(error) as unknown,
        recoveries: 1,
        progressed: false,
      })
      // the lost run is fenced out
      expect(
        await storage.settle([{ transition: 'complete', id: queued.id, run: 1, output: '1' }], now),
      ).toEqual({ applied: [false], cancelled: [] })
      expect(await claimOne(storage, { now })).toMatchObject({ id: queued.id, runs: 2, failures: 0 })
    })

    test('recoverLeases fails an execution that loses more runs in a row than maxRecoveries', async (open) => {
      const storage = await open()
      const row = await enqueueOne(storage, { maxAttempts: 3, maxRecoveries: 2 })
      let now = T0
      const loseRun = async () => {
        await claimOne(storage, { now })
        now += LEASE_MS + 1
        return storage.recoverLeases(recoverRequest({ now }))
      }
      expect((await loseRun()).map((r) => [r.status, r.recoveries])).toEqual([['queued', 1]])
      expect((await loseRun()).map((r) => [r.status, r.recoveries])).toEqual([['queued', 2]])
      expect(await mustGet(storage, row.id)).toMatchObject({ status: 'queued', failures: 0, recoveries: 2 })
      expect(await loseRun()).toEqual([
        {
          id: row.id,
          taskId: 'alpha',
          run: 3,
          status: 'failed',
          progressed: false,
          recoveries: 2,
          maxRecoveries: 2,
          cancelledChildren: [],
        },
      ])
      expect(await mustGet(storage, row.id)).toMatchObject({
        status: 'failed',
        runs: 3,
        // the run that used up the budget is the execution's failed attempt
        failures: 1,
        recoveries: 2,
        error: exhaustedError(2),
        leaseOwner: null,
        leaseExpiresAt: null,
        finishedAt: now,
      })
      const history = await storage.history(row.id)
      expect(history.at(-1)).toMatchObject({ at: now, from: 'running', to: 'failed', run: 3 })
      expect(JSON.parse(history.at(-1)!.detail!)).toEqual({
        transition: 'abandon',
        error: JSON.parse(exhaustedError(2)) as unknown,
        lost: JSON.parse(storedError('lease expired')) as unknown,
        recoveries: 2,
        progressed: false,
      })
      expect((await storage.claim(claimRequest({ now: now + LEASE_MS }))).claimed).toEqual([])
    })

    test('recoverLeases with maxRecoveries 0 fails the execution on its first lost run', async (open) => {
      const storage = await open()
      const row = await enqueueOne(storage, { maxRecoveries: 0 })
      await claimOne(storage)
      const [lost] = await storage.recoverLeases(recoverRequest({ now: T0 + LEASE_MS + 1 }))
      expect(lost).toMatchObject({ id: row.id, status: 'failed', recoveries: 0, maxRecoveries: 0 })
      expect(await mustGet(storage, row.id)).toMatchObject({ status: 'failed', error: exhaustedError(0) })
    })

    test('a lost run that recorded progress restarts the count at 1; records of earlier runs do not count', async (open) => {
      const storage = await open()
      const row = await enqueueOne(storage, { maxRecoveries: 2 })
      // Position 0 is a step; position 1 a sleep, recorded waiting, then done.
      const step = (position: number, status: 'done' | 'waiting') => ({
        position,
        name: `s${position}`,
        kind: position === 0 ? ('step' as const) : ('sleep' as const),
        status,
        value: status === 'done' ? '1' : null,
        error: null,
        wakeAt: position === 0 ? null : T0,
        childId: null,
        signalName: null,
        wakeupKey: null,
      })
      const at = (n: number) => T0 + n * 10 * LEASE_MS
      const recoverAt = async (n: number) =>
        (await storage.recoverLeases(recoverRequest({ now: at(n) + 2 * LEASE_MS }))).map((r) => [
          r.status,
          r.recoveries,
          r.progressed,
        ])
      // Run 1 records nothing; run 2 too: two recoveries in a row.
      await claimOne(storage, { now: at(0) })
      expect(await recoverAt(0)).toEqual([['queued', 1, false]])
      await claimOne(storage, { now: at(1) })
      expect(await recoverAt(1)).toEqual([['queued', 2, false]])
      // Run 3 writes a step record (and a wait's record) before it is lost: progress.
      await claimOne(storage, { now: at(2) })
      expect(
        await storage.recordSteps(
          [
            { executionId: row.id, run: 3, step: step(0, 'done') },
            { executionId: row.id, run: 3, step: step(1, 'waiting') },
          ],
          at(2) + 1,
        ),
      ).toEqual(['written', 'written'])
      expect(await recoverAt(2)).toEqual([['queued', 1, true]])
      // Run 4 records nothing new: the records of run 3 are older than its claim.
      await claimOne(storage, { now: at(3) })
      expect(await recoverAt(3)).toEqual([['queued', 2, false]])
      // Run 5 completes the wait recorded earlier: that is progress too.
      await claimOne(storage, { now: at(4) })
      expect(
        await storage.recordSteps([{ executionId: row.id, run: 5, step: step(1, 'done') }], at(4) + 1),
      ).toEqual(['written'])
      expect(await recoverAt(4)).toEqual([['queued', 1, true]])
      expect(await mustGet(storage, row.id)).toMatchObject({ status: 'queued', failures: 0, recoveries: 1 })
    })

    test('a run that ends by itself resets recoveries, a release keeps them, a rerun resets them', async (open) => {
      const storage = await open()
      const lose = async (id: string, now: number) => {
        await claimOne(storage, { now })
        const [r] = await storage.recoverLeases(recoverRequest({ now: now + LEASE_MS + 1 }))
        expect(r).toMatchObject({ id, status: 'queued' })
        return now + LEASE_MS + 1
      }
      const settlements: ((id: string) => Settlement)[] = [
        (id) => ({ transition: 'complete', id, run: 2, output: '1' }),
        (id) => ({ transition: 'park', id, run: 2, runAt: WAIT_FOREVER }),
        (id) => ({ transition: 'retry', id, run: 2, error: storedError('r'), delayMs: 0 }),
        (id) => ({ transition: 'fail', id, run: 2, error: storedError('f') }),
        (id) => ({ transition: 'time_out', id, run: 2, error: storedError('t') }),
      ]
      for (const settlement of settlements) {
        const { id } = await enqueueOne(storage)
        const now = await lose(id, T0)
        expect(await mustGet(storage, id)).toMatchObject({ recoveries: 1 })
        await claimOne(storage, { now })
        expect(await storage.settle([settlement(id)], now + 1)).toEqual({ applied: [true], cancelled: [] })
        expect(await mustGet(storage, id)).toMatchObject({ recoveries: 0 })
      }
      const released = await enqueueOne(storage)
      let now = await lose(released.id, T0)
      await claimOne(storage, { now })
      await storage.settle([{ transition: 'release', id: released.id, run: 2, error: storedError('s') }], now)
      expect(await mustGet(storage, released.id)).toMatchObject({ status: 'queued', recoveries: 1 })

      const abandoned = await enqueueOne(storage, { maxRecoveries: 1, taskId: 'beta' })
      now = T0
      await claimOne(storage, { now, taskIds: ['beta'] })
      now += LEASE_MS + 1
      await storage.recoverLeases(recoverRequest({ now }))
      await claimOne(storage, { now, taskIds: ['beta'] })
      now += LEASE_MS + 1
      await storage.recoverLeases(recoverRequest({ now }))
      expect(await mustGet(storage, abandoned.id)).toMatchObject({
        status: 'failed',
        failures: 1,
        recoveries: 1,
      })
      expect((await storage.rerun(abandoned.id, now))?.row).toMatchObject({
        status: 'queued',
        runs: 2,
        failures: 0,
        recoveries: 0,
        error: null,
      })
    })

    test('recoverLeases leaves unexpired leases and other statuses alone', async (open) => {
      const storage = await open()
      const early = await enqueueOne(storage, { label: 'early' })
      await claimOne(storage, { now: T0 })
      const late = await enqueueOne(storage, { label: 'late' })
      await claimOne(storage, { now: T0 + 1000 })
      const queued = await enqueueOne(storage, { label: 'queued', runAt: T0 + 10 * LEASE_MS })
      const before = await mustGet(storage, late.id)
      const recovered = await storage.recoverLeases(
        recoverRequest({
          now: T0 + LEASE_MS + 1,
          error: storedError('e'),
          limit: 10,
        }),
      )
      expect(recovered.map((r) => r.id)).toEqual([early.id])
      expect(await storage.get(late.id)).toEqual(before)
      expect(await storage.get(queued.id)).toEqual(queued)
    })

    test('recoverLeases recovers at most limit executions', async (open) => {
      const storage = await open()
      for (let i = 0; i < 3; i++) await enqueueOne(storage)
      await storage.claim(claimRequest())
      const request = recoverRequest({ now: T0 + LEASE_MS + 1, limit: 2 })
      expect(await storage.recoverLeases(request)).toHaveLength(2)
      expect(await storage.recoverLeases(request)).toHaveLength(1)
      expect(await storage.recoverLeases(request)).toHaveLength(0)
    })

    test("recoverLeases with everyOwnerBut recovers other owners' unexpired leases, never the caller's", async (open) => {
      const storage = await open()
      const mine = await enqueueOne(storage, { taskId: 'mine' })
      await claimOne(storage, { owner: WORKER_A, taskIds: ['mine'] })
      const theirs = await enqueueOne(storage, { taskId: 'theirs' })
      await claimOne(storage, { owner: WORKER_B, taskIds: ['theirs'] })
      const mineBefore = await mustGet(storage, mine.id)
      const now = T0 + 1
      const recovered = await storage.recoverLeases(
        recoverRequest({
          now,
          error: storedError('dead'),
          limit: 10,
          everyOwnerBut: WORKER_A,
        }),
      )
      expect(recovered).toEqual([firstRecovery(theirs.id, 'theirs')])
      expect(await storage.get(mine.id)).toEqual(mineBefore)
      expect(await mustGet(storage, theirs.id)).toMatchObject({ status: 'queued', leaseOwner: null })
      // Without everyOwnerBut, nothing unexpired is touched.
      await claimOne(storage, { owner: WORKER_B, taskIds: ['theirs'], now })
      expect(
        await storage.recoverLeases(recoverRequest({ now, error: storedError('dead'), limit: 10 })),
      ).toEqual([])
    })

    test("recoverLeases with everyOwnerBut still recovers the caller's expired leases", async (open) => {
      const storage = await open()
      const mine = await enqueueOne(storage)
      await claimOne(storage, { owner: WORKER_A })
      const recovered = await storage.recoverLeases(
        recoverRequest({
          now: T0 + LEASE_MS + 1,
          error: storedError('e'),
          limit: 10,
          everyOwnerBut: WORKER_A,
        }),
      )
      expect(recovered).toEqual([
        expect.objectContaining({ id: mine.id, taskId: 'alpha', run: 1, status: 'queued', recoveries: 1 }),
      ])
    })
  })
}
