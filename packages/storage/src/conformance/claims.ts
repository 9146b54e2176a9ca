import { expect } from 'vitest'
import {
  LEASE_MS,
  T0,
  WORKER_A,
  WORKER_B,
  claimOne,
  claimRequest,
  enqueueOne,
  fullRows,
  labelOf,
  mustGet,
  newExecution,
  storedError,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * `claim`: which due executions it takes and in what order (priority first; within a priority
 * round-robin across tasks, then the oldest run_at), the lease and the history row it writes,
 * that it never takes a running execution, and that it does nothing else (timers are
 * `housekeep`'s, in housekeeping.ts). Claims racing over two connections: races-fences.ts.
 */
export function claimConformance({ group, test }: ConformanceDeclarer): void {
  group('claim', () => {
    test('claim takes the highest priority first, then the oldest run_at, then the lowest id', async (open) => {
      const storage = await open()
      // Enqueued in this order, so ids ascend in this order.
      await storage.enqueue(
        [
          newExecution({ label: 'low-old-1', priority: 0, runAt: T0 - 300 }),
          newExecution({ label: 'high-new', priority: 5, runAt: T0 - 100 }),
          newExecution({ label: 'low-old-2', priority: 0, runAt: T0 - 300 }),
          newExecution({ label: 'high-old', priority: 5, runAt: T0 - 200 }),
          newExecution({ label: 'negative', priority: -5, runAt: T0 - 1000 }),
          newExecution({ label: 'low-new', priority: 0, runAt: T0 - 10 }),
        ],
        T0 - 1000,
      )
      const order: string[] = []
      for (let i = 0; i < 6; i++) order.push(labelOf(await claimOne(storage)))
      expect(order).toEqual(['high-old', 'high-new', 'low-old-1', 'low-old-2', 'low-new', 'negative'])
      expect((await storage.claim(claimRequest())).claimed).toEqual([])
    })

    test('claim shares a batch fairly across tasks: a backlog of one task does not hold up another', async (open) => {
      const storage = await open()
      await storage.enqueue(
        Array.from({ length: 10 }, (_, i) => newExecution({ label: `a${i}`, runAt: T0 - 1000 + i })),
        T0 - 1000,
      )
      // Newer than every `alpha` row, so plain oldest-first would claim them last.
      await storage.enqueue(
        [newExecution({ label: 'b0', taskId: 'beta' }), newExecution({ label: 'b1', taskId: 'beta' })],
        T0,
      )
      const rows = (await storage.claim(claimRequest({ limit: 4, taskIds: ['alpha', 'beta'] }))).claimed
      expect(rows.map(labelOf)).toEqual(['a0', 'b0', 'a1', 'b1'])
      // Fewer due in one task than its share: the other fills the batch.
      const next = (await storage.claim(claimRequest({ limit: 4, taskIds: ['alpha', 'beta'] }))).claimed
      expect(next.map(labelOf)).toEqual(['a2', 'a3', 'a4', 'a5'])
    })

    test('one-at-a-time claims rotate across tasks too', async (open) => {
      const storage = await open()
      await storage.enqueue(
        [
          ...Array.from({ length: 3 }, (_, i) => newExecution({ label: `a${i}`, runAt: T0 - 100 + i })),
          ...Array.from({ length: 3 }, (_, i) =>
            newExecution({ label: `b${i}`, taskId: 'beta', runAt: T0 - 50 + i }),
          ),
        ],
        T0 - 100,
      )
      const order: string[] = []
      for (let i = 0; i < 6; i++) order.push(labelOf(await claimOne(storage, { taskIds: ['alpha', 'beta'] })))
      expect(order).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2'])
    })

    test('claim fairness never overrides priority', async (open) => {
      const storage = await open()
      await storage.enqueue(
        [
          ...Array.from({ length: 3 }, (_, i) => newExecution({ label: `hi${i}`, priority: 5 })),
          newExecution({ label: 'low', taskId: 'beta' }),
        ],
        T0,
      )
      const rows = (await storage.claim(claimRequest({ limit: 3, taskIds: ['alpha', 'beta'] }))).claimed
      expect(rows.map(labelOf)).toEqual(['hi0', 'hi1', 'hi2'])
    })

    test('claim takes at most limit executions, the best ones', async (open) => {
      const storage = await open()
      await storage.enqueue(
        [
          newExecution({ label: 'p1', priority: 1 }),
          newExecution({ label: 'p3', priority: 3 }),
          newExecution({ label: 'p0', priority: 0 }),
          newExecution({ label: 'p2', priority: 2 }),
        ],
        T0,
      )
      const rows = (await storage.claim(claimRequest({ limit: 2 }))).claimed
      expect(rows.map(labelOf).sort()).toEqual(['p2', 'p3'])
      const queued = await storage.list({ statuses: ['queued'], limit: 10 })
      expect((await fullRows(storage, queued)).map(labelOf).sort()).toEqual(['p0', 'p1'])
    })

    test('claim skips executions whose run_at is in the future', async (open) => {
      const storage = await open()
      await enqueueOne(storage, { label: 'later', runAt: T0 + 1 })
      await enqueueOne(storage, { label: 'now', runAt: T0 })
      expect((await storage.claim(claimRequest())).claimed.map(labelOf)).toEqual(['now'])
      expect((await storage.claim(claimRequest())).claimed).toEqual([])
      expect((await storage.claim(claimRequest({ now: T0 + 1 }))).claimed.map(labelOf)).toEqual(['later'])
    })

    test('claim only takes executions of the listed tasks', async (open) => {
      const storage = await open()
      await enqueueOne(storage, { taskId: 'alpha', label: 'a' })
      await enqueueOne(storage, { taskId: 'beta', label: 'b' })
      await enqueueOne(storage, { taskId: 'gamma', label: 'g' })
      const rows = (await storage.claim(claimRequest({ taskIds: ['beta', 'gamma'] }))).claimed
      expect(rows.map((r) => r.taskId).sort()).toEqual(['beta', 'gamma'])
      expect((await storage.list({ statuses: ['queued'], limit: 10 })).map((r) => r.taskId)).toEqual([
        'alpha',
      ])
    })

    test('claim with no task ids or a zero limit claims nothing', async (open) => {
      const storage = await open()
      await enqueueOne(storage)
      expect((await storage.claim(claimRequest({ taskIds: [] }))).claimed).toEqual([])
      expect((await storage.claim(claimRequest({ limit: 0 }))).claimed).toEqual([])
      expect((await storage.list({ statuses: ['queued'], limit: 10 })).length).toBe(1)
    })

    test('claim marks the execution running under a lease and appends a history row', async (open) => {
      const storage = await open()
      const queued = await enqueueOne(storage, { runAt: T0 - 50 }, T0 - 50)
      const claimed = await claimOne(storage, { now: T0, owner: WORKER_B })
      expect(claimed).toEqual({
        ...queued,
        status: 'running',
        runs: 1,
        claimedAt: T0,
        leaseOwner: WORKER_B,
        leaseExpiresAt: T0 + LEASE_MS,
        startedAt: T0,
        updatedAt: T0,
      })
      expect(await storage.get(queued.id)).toEqual(claimed)
      const history = await storage.history(queued.id)
      expect(history).toHaveLength(2)
      expect(history[1]).toMatchObject({ at: T0, from: 'queued', to: 'running', run: 1 })
      expect(JSON.parse(history[1]!.detail!)).toMatchObject({ worker: WORKER_B })
    })

    test('a running execution is not claimed again', async (open) => {
      const storage = await open()
      await enqueueOne(storage)
      await claimOne(storage)
      expect(
        (await storage.claim(claimRequest({ owner: WORKER_B, now: T0 + 10 * LEASE_MS }))).claimed,
      ).toEqual([])
    })

    test('a later run counts up, keeps startedAt of the first and sets claimedAt', async (open) => {
      const storage = await open()
      const { id } = await enqueueOne(storage)
      await claimOne(storage, { now: T0 })
      expect(
        await storage.settle(
          [{ transition: 'retry', id, run: 1, error: storedError('boom'), delayMs: 90 }],
          T0 + 10,
        ),
      ).toEqual({ applied: [true], cancelled: [] })
      const second = await claimOne(storage, { now: T0 + 100, owner: WORKER_B })
      expect(second).toMatchObject({
        runs: 2,
        claimedAt: T0 + 100,
        startedAt: T0,
        leaseOwner: WORKER_B,
        leaseExpiresAt: T0 + 100 + LEASE_MS,
        updatedAt: T0 + 100,
      })
    })

    test('two claimers never take the same execution', async (open) => {
      const first = await open()
      const second = await open()
      const count = 40
      await first.enqueue(
        Array.from({ length: count }, (_, i) => newExecution({ label: `n${i}`, priority: i % 4 })),
        T0,
      )
      const taken = new Map<string, string>()
      for (let round = 0; round < 4; round++) {
        const [a, b] = await Promise.all([
          first.claim(claimRequest({ owner: WORKER_A, limit: 7 })),
          second.claim(claimRequest({ owner: WORKER_B, limit: 7 })),
        ])
        for (const [owner, rows] of [
          [WORKER_A, a.claimed],
          [WORKER_B, b.claimed],
        ] as const) {
          for (const row of rows) {
            expect(taken.get(row.id), `execution ${row.id} claimed twice`).toBeUndefined()
            expect(row.leaseOwner).toBe(owner)
            taken.set(row.id, owner)
          }
        }
      }
      expect(taken.size).toBe(Math.min(count, 4 * 14))
      for (const [id, owner] of taken) expect((await mustGet(first, id)).leaseOwner).toBe(owner)
    })

    test('claim says it drained the queue when it took fewer than asked; rows due later do not count', async (open) => {
      const storage = await open()
      for (let i = 0; i < 5; i++) await enqueueOne(storage)
      await enqueueOne(storage, { runAt: T0 + 60_000 })
      const first = await storage.claim(claimRequest({ limit: 3 }))
      expect([first.claimed.length, first.drained]).toEqual([3, false])
      const second = await storage.claim(claimRequest({ limit: 3 }))
      expect([second.claimed.length, second.drained]).toEqual([2, true])
      const third = await storage.claim(claimRequest({ limit: 3 }))
      expect([third.claimed.length, third.drained]).toEqual([0, true])
    })

    test('claim neither wakes waiters whose time came nor expires deadlines: housekeep does', async (open) => {
      const storage = await open()
      const sleeper = await enqueueOne(storage)
      await claimOne(storage)
      await storage.settle([{ transition: 'park', id: sleeper.id, run: 1, runAt: T0 + 500 }], T0)
      const late = await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 10_000, deadlineAt: T0 + 300 })
      expect(await storage.claim(claimRequest({ now: T0 + 1000, taskIds: ['alpha', 'beta'] }))).toEqual({
        claimed: [],
        drained: true,
      })
      expect((await mustGet(storage, sleeper.id)).status).toBe('waiting')
      expect((await mustGet(storage, late.id)).status).toBe('queued')
      expect(await storage.history(sleeper.id)).toHaveLength(3) // enqueue, claim, park
      expect(await storage.history(late.id)).toHaveLength(1)
    })
  })
}
