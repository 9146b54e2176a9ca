import { expect } from 'vitest'
import { WAIT_FOREVER } from '@ratchet/core'
import {
  T0,
  claimOne,
  claimRequest,
  enqueueOne,
  mustGet,
  storedError,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * The timers' side of the port: `housekeep` (waiters whose time came → queued, queued and
 * waiting executions past their deadline → timed_out, at most `limit` per call) and
 * `nextDueAt` (when the executor's one due timer should fire). Housekeeping racing other
 * writers over two connections: races-timers.ts.
 */
export function housekeepingConformance({ group, test }: ConformanceDeclarer): void {
  group('housekeep', () => {
    test('housekeep returns what it changed: waiters that came due, executions past their deadline', async (open) => {
      const storage = await open()
      const sleeper = await enqueueOne(storage)
      await claimOne(storage)
      await storage.settle([{ transition: 'park', id: sleeper.id, run: 1, runAt: T0 + 500 }], T0)
      const late = await enqueueOne(storage, { runAt: T0 + 10_000, deadlineAt: T0 + 300 })
      expect(await storage.housekeep(T0 + 299, 100)).toEqual({ changed: [], more: false, busy: false })
      expect(await storage.housekeep(T0 + 300, 100)).toEqual({
        changed: [{ id: late.id, taskId: 'alpha', from: 'queued', to: 'timed_out', run: 0 }],
        more: false,
        busy: false,
      })
      expect(await storage.housekeep(T0 + 500, 100)).toEqual({
        changed: [{ id: sleeper.id, taskId: 'alpha', from: 'waiting', to: 'queued', run: 1 }],
        more: false,
        busy: false,
      })
      expect(await storage.history(sleeper.id)).toHaveLength(4)
      expect((await storage.history(sleeper.id)).at(-1)).toMatchObject({
        at: T0 + 500,
        from: 'waiting',
        to: 'queued',
        run: 1,
      })
      // queued again, the claim takes it
      expect((await storage.claim(claimRequest({ now: T0 + 500 }))).claimed.map((r) => r.id)).toEqual([
        sleeper.id,
      ])
    })

    test('housekeep changes at most limit executions and says when there is more', async (open) => {
      const storage = await open()
      // Five sleepers due at T0 + 100 and three queued executions past their deadline at T0 + 50.
      const sleepers: string[] = []
      for (let i = 0; i < 5; i++) {
        const row = await enqueueOne(storage, { label: `s${i}` })
        await claimOne(storage)
        await storage.settle([{ transition: 'park', id: row.id, run: 1, runAt: T0 + 100 }], T0)
        sleepers.push(row.id)
      }
      const late: string[] = []
      for (let i = 0; i < 3; i++)
        late.push((await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 10_000, deadlineAt: T0 + 50 })).id)
      const now = T0 + 200
      const first = await storage.housekeep(now, 3)
      expect(first.changed).toHaveLength(3)
      expect(first).toMatchObject({ more: true, busy: false })
      const second = await storage.housekeep(now, 3)
      expect(second.changed).toHaveLength(3)
      expect(second.more).toBe(true)
      const third = await storage.housekeep(now, 3)
      expect(third.changed.length).toBeLessThanOrEqual(3)
      // Called again while `more`, it ends with nothing left: every change made exactly once.
      const changed = [...first.changed, ...second.changed, ...third.changed]
      let more = third.more
      while (more) {
        const next = await storage.housekeep(now, 3)
        changed.push(...next.changed)
        more = next.more
      }
      expect(
        changed
          .filter((c) => c.to === 'queued')
          .map((c) => c.id)
          .sort(),
      ).toEqual([...sleepers].sort())
      expect(
        changed
          .filter((c) => c.to === 'timed_out')
          .map((c) => c.id)
          .sort(),
      ).toEqual([...late].sort())
      expect(changed).toHaveLength(8)
      expect(await storage.housekeep(now, 3)).toEqual({ changed: [], more: false, busy: false })
      // limit 0 does nothing
      const another = await enqueueOne(storage, { deadlineAt: now })
      expect(await storage.housekeep(now, 0)).toEqual({ changed: [], more: false, busy: false })
      expect((await mustGet(storage, another.id)).status).toBe('queued')
    })
  })

  group('deadlines', () => {
    test('housekeep ends queued and waiting executions past their deadline timed_out, each a failed attempt', async (open) => {
      const storage = await open()
      const queued = await enqueueOne(storage, { taskId: 'beta', deadlineAt: T0 + 100, runAt: T0 + 500 })
      const waiting = await enqueueOne(storage, { deadlineAt: T0 + 100 })
      await claimOne(storage)
      await storage.settle([{ transition: 'park', id: waiting.id, run: 1, runAt: WAIT_FOREVER }], T0 + 1)
      expect((await storage.housekeep(T0 + 100, 10)).changed.map((c) => c.id).sort()).toEqual(
        [queued.id, waiting.id].sort(),
      )
      expect((await storage.claim(claimRequest({ now: T0 + 100 }))).claimed).toEqual([])
      for (const [row, from, runs] of [
        [queued, 'queued', 0],
        [waiting, 'waiting', 1],
      ] as const) {
        expect(await mustGet(storage, row.id)).toMatchObject({
          status: 'timed_out',
          runs,
          failures: 1,
          finishedAt: T0 + 100,
        })
        const last = (await storage.history(row.id)).at(-1)!
        expect(last).toMatchObject({ at: T0 + 100, from, to: 'timed_out', run: runs })
        expect(JSON.parse(last.detail!)).toMatchObject({
          transition: 'expire',
          error: { code: 'DEADLINE_EXCEEDED' },
        })
      }
    })
  })

  group('next due time', () => {
    test('nextDueAt returns the earliest run_at of a queued execution of the given tasks', async (open) => {
      const storage = await open()
      expect(await storage.nextDueAt(['alpha'])).toBeNull()
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 + 300 })
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 + 200 })
      await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 100 })
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 200)
      expect(await storage.nextDueAt(['alpha', 'beta'])).toBe(T0 + 100)
      expect(await storage.nextDueAt(['gamma'])).toBeNull()
      expect(await storage.nextDueAt([])).toBeNull()
      // Running and finished executions do not count; a past run_at does.
      await claimOne(storage, { now: T0 + 200 })
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 300)
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 - 50 }, T0 - 50)
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 - 50)
    })

    test('nextDueAt also counts the wake time of any waiting execution and any deadline of a queued or waiting one', async (open) => {
      const storage = await open()
      // a wait with no time (a signal, a child) never makes anything due
      const forever = await enqueueOne(storage, { taskId: 'beta' })
      await claimOne(storage, { taskIds: ['beta'] })
      await storage.settle([{ transition: 'park', id: forever.id, run: 1, runAt: WAIT_FOREVER }], T0)
      expect(await storage.nextDueAt(['alpha', 'beta'])).toBeNull()
      const sleeper = await enqueueOne(storage, { taskId: 'alpha' })
      await claimOne(storage)
      // parked until T0 + 500: its wake time is due then, whichever tasks are asked about
      // (housekeeping serves every task)
      expect(
        await storage.settle([{ transition: 'park', id: sleeper.id, run: 1, runAt: T0 + 500 }], T0),
      ).toEqual({ applied: [true], cancelled: [] })
      expect((await mustGet(storage, sleeper.id)).status).toBe('waiting')
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 500)
      expect(await storage.nextDueAt(['beta'])).toBe(T0 + 500)
      expect(await storage.nextDueAt([])).toBe(T0 + 500)
      // a deadline of a queued execution counts, though its run_at is later
      const late = await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 10_000, deadlineAt: T0 + 300 })
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 300)
      // and a deadline of a waiting one, though it waits forever
      await storage.cancel(late.id, T0, storedError('not this one'))
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 500)
      const bounded = await enqueueOne(storage, { taskId: 'gamma', deadlineAt: T0 + 400 })
      await claimOne(storage, { taskIds: ['gamma'] })
      await storage.settle([{ transition: 'park', id: bounded.id, run: 1, runAt: WAIT_FOREVER }], T0)
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 400)
      // a queued execution of the given tasks due sooner than all of them
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 + 200 })
      expect(await storage.nextDueAt(['alpha'])).toBe(T0 + 200)
      expect(await storage.nextDueAt(['beta'])).toBe(T0 + 400)
      // the housekeeping at the wake time puts the sleeper back to queued, and the claim takes it
      await claimOne(storage, { now: T0 + 200 })
      await storage.housekeep(T0 + 500, 10)
      expect((await mustGet(storage, bounded.id)).status).toBe('timed_out')
      const {
        claimed: [woken],
      } = await storage.claim(claimRequest({ now: T0 + 500 }))
      expect(woken).toMatchObject({ id: sleeper.id, status: 'running', runs: 2 })
      expect(await storage.nextDueAt(['alpha', 'beta', 'gamma'])).toBeNull()
    })
  })
}
