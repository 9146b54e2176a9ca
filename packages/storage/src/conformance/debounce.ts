import { expect } from 'vitest'
import type { NewExecution } from '@ratchet/core'
import {
  RACE_ROUNDS,
  T0,
  claimOne,
  claimRequest,
  labelOf,
  newExecution,
  race,
  storedError,
  type ConformanceDeclarer,
} from './fixtures'

/** A debounced enqueue of `key` at `now`, due `periodMs` later. */
const debounced = (
  key: string,
  now: number,
  label: string,
  { periodMs = 1_000, maxWaitMs = null as number | null, taskId = 'alpha' } = {},
): NewExecution => newExecution({ label, taskId, runAt: now + periodMs, debounce: { key, maxWaitMs } })

/**
 * Debounced enqueues (`NewExecution.debounce`): an enqueue whose key matches an execution of
 * the task that is queued and has never run updates it (input, run_at bounded by created_at +
 * maxWaitMs) instead of inserting; once that execution is claimed, the key starts a new one.
 * Concurrent enqueues of one key on two connections make one execution.
 */
export function debounceConformance({ group, test }: ConformanceDeclarer): void {
  group('debounce', () => {
    test('an enqueue with the key of a queued, never-run execution updates its input and run_at instead of inserting', async (open) => {
      const storage = await open()
      const [first] = await storage.enqueue([debounced('acme', T0, 'e1', { maxWaitMs: 2_500 })], T0)
      expect(first).toMatchObject({ created: true, row: { runAt: T0 + 1_000, status: 'queued' } })
      const [second] = await storage.enqueue(
        [debounced('acme', T0 + 900, 'e2', { maxWaitMs: 2_500 })],
        T0 + 900,
      )
      expect(second).toMatchObject({ created: false, row: { id: first!.row.id, runAt: T0 + 1_900 } })
      expect(labelOf(second!.row)).toBe('e2')
      // Bounded by created_at + maxWaitMs: T0 + 2500, not T0 + 3000.
      const [third] = await storage.enqueue(
        [debounced('acme', T0 + 2_000, 'e3', { maxWaitMs: 2_500 })],
        T0 + 2_000,
      )
      expect(third).toMatchObject({ created: false, row: { id: first!.row.id, runAt: T0 + 2_500 } })
      // Another key, or the same key of another task, is another execution.
      const [other] = await storage.enqueue([debounced('globex', T0, 'g1')], T0)
      const [otherTask] = await storage.enqueue([debounced('acme', T0, 'b1', { taskId: 'beta' })], T0)
      expect(new Set([first!.row.id, other!.row.id, otherTask!.row.id]).size).toBe(3)
      expect(await storage.get(first!.row.id)).toEqual(third!.row)
      // One history row: the merged enqueues changed no status.
      expect((await storage.history(first!.row.id)).map((h) => h.to)).toEqual(['queued'])
      // A batch holding the key twice: the second updates the first.
      const batch = await storage.enqueue(
        [debounced('initech', T0, 'i1'), debounced('initech', T0, 'i2')],
        T0,
      )
      expect(batch.map((o) => o.created)).toEqual([true, false])
      expect(batch[1]!.row.id).toBe(batch[0]!.row.id)
      expect(labelOf((await storage.get(batch[0]!.row.id))!)).toBe('i2')
    })

    test('once its execution has been claimed, the key starts a new one; a rerun is not merged into', async (open) => {
      const storage = await open()
      const [first] = await storage.enqueue([debounced('acme', T0 - 1_000, 'e1')], T0 - 1_000)
      const claimed = await claimOne(storage, { taskIds: ['alpha'] })
      expect(claimed.id).toBe(first!.row.id)
      const [next] = await storage.enqueue([debounced('acme', T0, 'e2')], T0)
      expect(next!.created).toBe(true)
      expect(next!.row.id).not.toBe(first!.row.id)
      // The first fails and is rerun: queued again, but it has run, so the key's execution is still `next`.
      await storage.settle(
        [{ transition: 'fail', id: first!.row.id, run: 1, error: storedError('boom') }],
        T0,
      )
      expect((await storage.rerun(first!.row.id, T0))?.rerunFrom).toBe('failed')
      const [third] = await storage.enqueue([debounced('acme', T0 + 10, 'e3')], T0 + 10)
      expect(third).toMatchObject({ created: false, row: { id: next!.row.id } })
      expect(labelOf((await storage.get(first!.row.id))!)).toBe('e1')
      const due = (await storage.claim(claimRequest({ now: T0 + 5_000 }))).claimed.map(labelOf).sort()
      expect(due).toEqual(['e1', 'e3'])
    })

    test('a burst’s execution cancelled before it ran, rerun after a new burst began: both stand, neither takes the key’s enqueues twice', async (open) => {
      const storage = await open()
      const [first] = await storage.enqueue([debounced('acme', T0, 'e1')], T0)
      await storage.cancel(first!.row.id, T0 + 1, storedError('cancelled'))
      const [second] = await storage.enqueue([debounced('acme', T0 + 2, 'e2')], T0 + 2)
      expect(second!.created).toBe(true)
      // The rerun is an execution of its own now, outside the burst (no unique violation).
      expect((await storage.rerun(first!.row.id, T0 + 3))?.rerunFrom).toBe('cancelled')
      const [third] = await storage.enqueue([debounced('acme', T0 + 4, 'e3')], T0 + 4)
      expect(third).toMatchObject({ created: false, row: { id: second!.row.id } })
      expect(labelOf((await storage.get(first!.row.id))!)).toBe('e1')
    })

    test('races: enqueues of one key on two connections at once make one execution', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const key = `key-${round}`
        const [[x], [y]] = await race(
          round,
          () => a.enqueue([debounced(key, T0, `a${round}`)], T0),
          () => b.enqueue([debounced(key, T0, `b${round}`)], T0),
        )
        expect(x!.row.id, key).toBe(y!.row.id)
        expect([x!.created, y!.created].sort(), key).toEqual([false, true])
      }
    })
  })
}
