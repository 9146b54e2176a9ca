import { describe, expect, it, onTestFinished } from 'vitest'
import {
  ConflictError,
  WAIT_FOREVER,
  newExecutionId,
  type ClaimRequest,
  type ExecutionRow,
  type NewExecution,
  type RecoverRequest,
  type Settlement,
  type Storage,
} from '@ratchet/core'
import { readConformance } from './reads'
import { summaryOf } from './summary-of'
import { continueConformance } from './continue-conformance'
import { purgeConformance } from './purge-conformance'
import { fenceRaceConformance } from './races-fences'
import { wakeRaceConformance } from './races-wakes'

/**
 * The conformance suite of the `Storage` port. Every adapter runs it from a ~10-line test
 * file; an adapter that cannot pass a test names it in `skip` with the reason, and the
 * reason is printed (a skip list naming a test that does not exist is an error).
 */
export interface StorageConformanceOptions {
  /** Shown in the suite's title, e.g. `sqlite`. */
  name: string
  /** A storage over a fresh, empty, migrated database. Called once per test; the suite closes it. */
  makeStorage: () => Promise<Storage>
  /**
   * A second connection to the same database as `storage`, for the concurrent-claimers
   * test. Without it, that test runs two claimers over the one storage.
   */
  openSecondConnection?: (storage: Storage) => Promise<Storage>
  /** Tests this adapter does not run, each group with its reason. */
  skip?: { reason: string; tests: string[] }[]
}

const T0 = Date.UTC(2030, 0, 1)
const LEASE_MS = 30_000
const BACKOFF = { initialMs: 1000, factor: 2, maxMs: 60_000 }
const WORKER_A = 'worker-a'
const WORKER_B = 'worker-b'

const storedError = (message: string) => JSON.stringify({ name: 'Error', message, retryable: true })

/** The error of an execution past its recovery budget, as the engine would store it. */
/** What `recoverLeases` reports for a run lost for the first time, without progress (defaults). */
const firstRecovery = (id: string, taskId: string) => ({
  id,
  taskId,
  run: 1,
  status: 'queued',
  progressed: false,
  recoveries: 1,
  maxRecoveries: 5,
  cancelledChildren: [],
})
const exhaustedError = (maxRecoveries: number) =>
  JSON.stringify({
    name: 'RecoveriesExhaustedError',
    message: `more than ${maxRecoveries} recoveries`,
    code: 'RECOVERIES_EXHAUSTED',
    retryable: false,
  })

/** A recoverLeases request (lost runs' error: `lease expired`), limit 10 unless given. */
function recoverRequest(request: Partial<RecoverRequest> & { now: number }): RecoverRequest {
  return { error: storedError('lease expired'), exhaustedError, limit: 10, ...request }
}

/** A new execution of task `alpha`, due at T0; `label` ends up in its input. */
function newExecution(overrides: Partial<NewExecution> & { label?: string } = {}): NewExecution {
  const { label = 'x', ...rest } = overrides
  return {
    id: newExecutionId(T0),
    taskId: 'alpha',
    input: JSON.stringify({ label }),
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: BACKOFF,
    priority: 0,
    idempotencyKey: null,
    runAt: T0,
    ...rest,
  }
}

const labelOf = (row: ExecutionRow) => (JSON.parse(row.input) as { label: string }).label

async function enqueueOne(
  storage: Storage,
  overrides: Parameters<typeof newExecution>[0] = {},
  now = T0,
): Promise<ExecutionRow> {
  const [outcome] = await storage.enqueue([newExecution(overrides)], now)
  expect(outcome?.created).toBe(true)
  return outcome!.row
}

function claimRequest(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return { owner: WORKER_A, now: T0, leaseMs: LEASE_MS, limit: 100, taskIds: ['alpha'], ...overrides }
}

/** Claims exactly one execution and returns it. */
async function claimOne(storage: Storage, overrides: Partial<ClaimRequest> = {}): Promise<ExecutionRow> {
  const rows = (await storage.claim(claimRequest({ limit: 1, ...overrides }))).claimed
  expect(rows).toHaveLength(1)
  return rows[0]!
}

/** The full rows of listed summaries. */
async function fullRows(storage: Storage, listed: readonly { id: string }[]): Promise<ExecutionRow[]> {
  return Promise.all(listed.map((r) => mustGet(storage, r.id)))
}

async function mustGet(storage: Storage, id: string): Promise<ExecutionRow> {
  const row = await storage.get(id)
  if (!row) throw new Error(`execution ${id} is missing`)
  return row
}

async function countAll(storage: Storage): Promise<number> {
  return (await storage.list({ limit: 10_000 })).length
}

export function runStorageConformance(options: StorageConformanceOptions): void {
  const skipped = new Map<string, string>()
  for (const group of options.skip ?? []) {
    if (group.reason.trim() === '') throw new Error(`${options.name}: every skip needs a reason`)
    for (const title of group.tests) skipped.set(title, group.reason)
  }
  type Body = (open: () => Promise<Storage>) => Promise<void>
  const groups: { name: string; cases: { title: string; body: Body }[] }[] = []
  const declared = new Set<string>()

  // Tests are gathered first, so the skip list is checked before anything is declared.
  function group(name: string, gather: () => void): void {
    groups.push({ name, cases: [] })
    gather()
  }

  function test(title: string, body: Body): void {
    if (declared.has(title)) throw new Error(`duplicate conformance test title: ${title}`)
    declared.add(title)
    groups.at(-1)!.cases.push({ title, body })
  }

  /** Declares one test, skipped (with its reason printed) when the adapter lists it. */
  function declare(title: string, body: Body): void {
    const reason = skipped.get(title)
    if (reason !== undefined)
      console.warn(`[storage conformance: ${options.name}] skipped "${title}": ${reason}`)
    it.skipIf(reason !== undefined)(
      reason === undefined ? title : `${title} (skipped: ${reason})`,
      async () => {
        const opened: Storage[] = []
        onTestFinished(async () => {
          for (const storage of opened.reverse()) await storage.close()
        })
        let first: Storage | undefined
        await body(async () => {
          // The first call makes the test's database; later calls connect to it again.
          if (!first) {
            first = await options.makeStorage()
            opened.push(first)
            return first
          }
          if (!options.openSecondConnection) return first
          const second = await options.openSecondConnection(first)
          opened.push(second)
          return second
        })
      },
    )
  }

  group('enqueue', () => {
    test('enqueue stores a queued execution and its history row', async (open) => {
      const storage = await open()
      const wanted = newExecution({
        label: 'a',
        priority: 7,
        idempotencyKey: 'k-1',
        runAt: T0 + 500,
        maxAttempts: 4,
        maxRecoveries: 2,
        timeoutMs: 1234,
      })
      const [outcome] = await storage.enqueue([wanted], T0)
      const expected: ExecutionRow = {
        id: wanted.id,
        taskId: 'alpha',
        status: 'queued',
        input: wanted.input,
        output: null,
        error: null,
        runs: 0,
        maxAttempts: 4,
        recoveries: 0,
        maxRecoveries: 2,
        claimedAt: null,
        timeoutMs: 1234,
        backoff: expect.any(String) as string,
        priority: 7,
        idempotencyKey: 'k-1',
        runAt: T0 + 500,
        leaseOwner: null,
        leaseExpiresAt: null,
        createdAt: T0,
        updatedAt: T0,
        startedAt: null,
        finishedAt: null,
        failures: 0,
        parentId: null,
        rootId: null,
        wakesParent: 0,
        deadlineAt: null,
        wakePending: 0,
        generation: 0,
      }
      expect(outcome).toEqual({ row: expected, created: true })
      expect(JSON.parse(outcome!.row.backoff)).toEqual(BACKOFF)
      expect(await storage.get(wanted.id)).toEqual(outcome!.row)
      expect(await storage.history(wanted.id)).toEqual([
        {
          seq: expect.any(Number) as number,
          executionId: wanted.id,
          at: T0,
          from: null,
          to: 'queued',
          run: 0,
          detail: null,
          event: 'status',
          name: null,
        },
      ])
    })

    test('enqueue of several executions returns one outcome each, in order', async (open) => {
      const storage = await open()
      const wanted = [
        newExecution({ label: 'a' }),
        newExecution({ label: 'b' }),
        newExecution({ label: 'c' }),
      ]
      const outcomes = await storage.enqueue(wanted, T0)
      expect(outcomes.map((o) => [o.row.id, o.created])).toEqual(wanted.map((w) => [w.id, true]))
      expect(await countAll(storage)).toBe(3)
    })

    test('an existing (taskId, idempotencyKey) with the same input is returned with created false and no second history row', async (open) => {
      const storage = await open()
      const first = await enqueueOne(storage, { label: 'same', idempotencyKey: 'same' })
      const again = newExecution({ label: 'same', idempotencyKey: 'same' })
      const [outcome] = await storage.enqueue([again], T0 + 10)
      expect(outcome).toEqual({ row: first, created: false })
      expect(await storage.get(again.id)).toBeUndefined()
      expect(await storage.history(first.id)).toHaveLength(1)
      expect(await countAll(storage)).toBe(1)
    })

    test('an existing (taskId, idempotencyKey) with another input throws ConflictError and writes nothing of the call', async (open) => {
      const storage = await open()
      const first = await enqueueOne(storage, { label: 'first', idempotencyKey: 'same' })
      const innocent = newExecution({ label: 'innocent' })
      const clash = newExecution({ label: 'second', idempotencyKey: 'same' })
      await expect(storage.enqueue([innocent, clash], T0 + 10)).rejects.toBeInstanceOf(ConflictError)
      expect(await storage.get(innocent.id)).toBeUndefined()
      expect(await storage.get(clash.id)).toBeUndefined()
      expect(await storage.history(first.id)).toHaveLength(1)
      expect(await countAll(storage)).toBe(1)
    })

    test('the same input with its keys in another order is the same input: the existing row, no conflict', async (open) => {
      const storage = await open()
      const first = await enqueueOne(storage, {
        idempotencyKey: 'ordered',
        input: '{"label":"x","nested":{"a":1,"b":[1,{"c":2,"d":3}]}}',
      })
      const [outcome] = await storage.enqueue(
        [
          newExecution({
            idempotencyKey: 'ordered',
            input: '{"nested":{"b":[1,{"d":3,"c":2}],"a":1},"label":"x"}',
          }),
        ],
        T0 + 10,
      )
      expect(outcome).toEqual({ row: first, created: false })
      // The stored text is the first caller's, as it came.
      expect(first.input).toBe('{"label":"x","nested":{"a":1,"b":[1,{"c":2,"d":3}]}}')
      await expect(
        storage.enqueue(
          [
            newExecution({
              idempotencyKey: 'ordered',
              input: '{"nested":{"b":[{"d":3,"c":2},1],"a":1},"label":"x"}',
            }),
          ],
          T0 + 10,
        ),
      ).rejects.toBeInstanceOf(ConflictError)
      expect(await countAll(storage)).toBe(1)
    })

    test('a key repeated within one enqueue call yields one execution', async (open) => {
      const storage = await open()
      const a = newExecution({ label: 'a', idempotencyKey: 'dup' })
      const b = newExecution({ label: 'a', idempotencyKey: 'dup' })
      const [first, second] = await storage.enqueue([a, b], T0)
      expect(first?.created).toBe(true)
      expect(second).toEqual({ row: first!.row, created: false })
      expect(await countAll(storage)).toBe(1)
    })

    test('the same idempotency key on another task is a distinct execution', async (open) => {
      const storage = await open()
      const a = await enqueueOne(storage, { taskId: 'alpha', idempotencyKey: 'shared' })
      const b = await enqueueOne(storage, { taskId: 'beta', idempotencyKey: 'shared' })
      expect(b.id).not.toBe(a.id)
      expect(await countAll(storage)).toBe(2)
    })

    test('executions without an idempotency key never collide', async (open) => {
      const storage = await open()
      const outcomes = await storage.enqueue([newExecution(), newExecution(), newExecution()], T0)
      expect(outcomes.every((o) => o.created)).toBe(true)
      expect(await storage.enqueue([newExecution()], T0)).toEqual([
        expect.objectContaining({ created: true }),
      ])
      expect(await countAll(storage)).toBe(4)
    })
  })

  group('events', () => {
    test('publishEvent records the event and enqueues its executions together; a failure stores neither', async (open) => {
      const storage = await open()
      const event = (
        id: string,
        executionIds: string[],
        publishId: string | null = null,
        payload = '{"type":"order.placed"}',
      ) => ({
        id,
        type: 'order.placed',
        payload,
        createdAt: T0,
        executionIds: JSON.stringify(executionIds),
        publishId,
      })
      const a = newExecution({ label: 'a', idempotencyKey: 'event:1' })
      const first = await storage.publishEvent(event(newExecutionId(T0), [a.id], 'evt-1'), [a], T0)
      expect(first).toMatchObject({ repeat: false, outcomes: [expect.objectContaining({ created: true })] })
      expect(await storage.listEvents({ limit: 10 })).toEqual([
        expect.objectContaining({ type: 'order.placed', executionIds: JSON.stringify([a.id]) }),
      ])
      // The same key with another input conflicts: no event row, no execution.
      const clash = newExecution({ label: 'other', idempotencyKey: 'event:1' })
      await expect(
        storage.publishEvent(event(newExecutionId(T0), [clash.id]), [clash], T0),
      ).rejects.toBeInstanceOf(ConflictError)
      expect(await storage.listEvents({ limit: 10 })).toHaveLength(1)
      expect(await countAll(storage)).toBe(1)
      // The same publish id again: a repeat, nothing written; with another payload, a conflict.
      const again = await storage.publishEvent(event(newExecutionId(T0 + 1), [a.id], 'evt-1'), [a], T0 + 1)
      expect(again).toMatchObject({ repeat: true, outcomes: [], event: { id: first.event.id } })
      // Key order does not make another payload.
      const reordered = await storage.publishEvent(
        { ...event(newExecutionId(T0 + 1), [], 'evt-2', '{"type":"order.placed","a":{"x":1,"y":2}}') },
        [],
        T0 + 1,
      )
      expect(
        await storage.publishEvent(
          event(newExecutionId(T0 + 1), [], 'evt-2', '{"a":{"y":2,"x":1},"type":"order.placed"}'),
          [],
          T0 + 1,
        ),
      ).toMatchObject({ repeat: true, event: { id: reordered.event.id } })
      await expect(
        storage.publishEvent(
          event(newExecutionId(T0 + 1), [], 'evt-1', '{"type":"order.placed","x":1}'),
          [],
          T0 + 1,
        ),
      ).rejects.toBeInstanceOf(ConflictError)
      expect(await storage.listEvents({ limit: 10 })).toHaveLength(2)
      // No listener: the event alone.
      await storage.publishEvent(event(newExecutionId(T0 + 1), []), [], T0 + 1)
      expect(await storage.listEvents({ type: 'order.placed', limit: 10 })).toHaveLength(3)
    })
  })

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

    test('claim neither wakes waiters whose time came nor expires deadlines: housekeep does', async (open) => {
      const storage = await open()
      const sleeper = await enqueueOne(storage)
      await claimOne(storage)
      await storage.settle([{ transition: 'park', id: sleeper.id, run: 1, runAt: T0 + 500 }], T0)
      const late = await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 10_000, deadlineAt: T0 + 300 })
      expect(await storage.claim(claimRequest({ now: T0 + 1000, taskIds: ['alpha', 'beta'] }))).toEqual({
        claimed: [],
      })
      expect((await mustGet(storage, sleeper.id)).status).toBe('waiting')
      expect((await mustGet(storage, late.id)).status).toBe('queued')
      expect(await storage.history(sleeper.id)).toHaveLength(3) // enqueue, claim, park
      expect(await storage.history(late.id)).toHaveLength(1)
    })
  })

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

  group('settle', () => {
    async function running(storage: Storage, overrides: Parameters<typeof newExecution>[0] = {}) {
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
  })

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
      parentOverrides: Parameters<typeof newExecution>[0] = {},
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
  })

  group('reads', () => {
    test('get of an unknown id returns undefined', async (open) => {
      const storage = await open()
      expect(await storage.get(newExecutionId(T0))).toBeUndefined()
    })

    test('list returns newest first and filters by task and statuses', async (open) => {
      const storage = await open()
      const a1 = await enqueueOne(storage, { taskId: 'alpha', label: 'a1' })
      const b1 = await enqueueOne(storage, { taskId: 'beta', label: 'b1' })
      const a2 = await enqueueOne(storage, { taskId: 'alpha', label: 'a2' })
      const a3 = await enqueueOne(storage, { taskId: 'alpha', label: 'a3' })
      await storage.claim(claimRequest({ limit: 1 })) // a1 (oldest id)
      await storage.cancel(a3.id, T0, storedError('c'))
      const ids = (rows: readonly { id: string }[]) => rows.map((r) => r.id)
      expect(ids(await storage.list({ limit: 10 }))).toEqual([a3.id, a2.id, b1.id, a1.id])
      expect(ids(await storage.list({ taskId: 'alpha', limit: 10 }))).toEqual([a3.id, a2.id, a1.id])
      expect(ids(await storage.list({ statuses: ['queued'], limit: 10 }))).toEqual([a2.id, b1.id])
      expect(ids(await storage.list({ statuses: ['running', 'cancelled'], limit: 10 }))).toEqual([
        a3.id,
        a1.id,
      ])
      expect(ids(await storage.list({ taskId: 'alpha', statuses: ['queued'], limit: 10 }))).toEqual([a2.id])
      expect(ids(await storage.list({ taskId: 'nobody', limit: 10 }))).toEqual([])
      expect(await storage.list({ taskId: 'alpha', statuses: ['running'], limit: 10 })).toEqual([
        summaryOf(await mustGet(storage, a1.id)),
      ])
    })

    test('list pages with limit and beforeId', async (open) => {
      const storage = await open()
      const rows: ExecutionRow[] = []
      for (let i = 0; i < 5; i++)
        rows.push(await enqueueOne(storage, { label: `n${i}`, taskId: i % 2 ? 'beta' : 'alpha' }))
      const newestFirst = rows.map((r) => r.id).reverse()
      const page1 = await storage.list({ limit: 2 })
      expect(page1.map((r) => r.id)).toEqual(newestFirst.slice(0, 2))
      const page2 = await storage.list({ limit: 2, beforeId: page1[1]!.id })
      expect(page2.map((r) => r.id)).toEqual(newestFirst.slice(2, 4))
      const page3 = await storage.list({ limit: 2, beforeId: page2[1]!.id })
      expect(page3.map((r) => r.id)).toEqual(newestFirst.slice(4))
      const alpha = await storage.list({ limit: 10, taskId: 'alpha', beforeId: rows[4]!.id })
      expect((await fullRows(storage, alpha)).map(labelOf)).toEqual(['n2', 'n0'])
    })

    test('history lists every transition in order', async (open) => {
      const storage = await open()
      const { id } = await enqueueOne(storage)
      await claimOne(storage, { now: T0 + 1 })
      await storage.settle([{ transition: 'retry', id, run: 1, error: storedError('e'), delayMs: 1 }], T0 + 2)
      await claimOne(storage, { now: T0 + 3 })
      await storage.settle([{ transition: 'complete', id, run: 2, output: '1' }], T0 + 4)
      const other = await enqueueOne(storage)
      const history = await storage.history(id)
      expect(history.map((h) => [h.from, h.to, h.run, h.at])).toEqual([
        [null, 'queued', 0, T0],
        ['queued', 'running', 1, T0 + 1],
        ['running', 'queued', 1, T0 + 2],
        ['queued', 'running', 2, T0 + 3],
        ['running', 'completed', 2, T0 + 4],
      ])
      expect(history.every((h) => h.executionId === id)).toBe(true)
      const seqs = history.map((h) => h.seq)
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
      expect(new Set(seqs).size).toBe(seqs.length)
      expect((await storage.history(other.id))[0]!.seq).toBeGreaterThan(seqs.at(-1)!)
    })

    test('history of an unknown id is empty', async (open) => {
      const storage = await open()
      expect(await storage.history(newExecutionId(T0))).toEqual([])
    })

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

  readConformance({ group, test })
  group('purge (retention)', () => purgeConformance(test))
  group('continue as new', () => continueConformance(test))
  group('queue stats', () => {
    test('queueStats counts queued and due executions per task with the oldest due run_at', async (open) => {
      const storage = await open()
      expect(await storage.queueStats(T0)).toEqual([])
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 - 300 }, T0 - 300)
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 - 100 }, T0 - 100)
      await enqueueOne(storage, { taskId: 'alpha', runAt: T0 + 5_000 })
      await enqueueOne(storage, { taskId: 'beta', runAt: T0 + 1_000 })
      const claimed = await enqueueOne(storage, { taskId: 'gamma', runAt: T0 - 50 }, T0 - 50)
      expect(await storage.queueStats(T0)).toEqual([
        { taskId: 'alpha', queued: 3, due: 2, oldestDueAt: T0 - 300 },
        { taskId: 'beta', queued: 1, due: 0, oldestDueAt: null },
        { taskId: 'gamma', queued: 1, due: 1, oldestDueAt: T0 - 50 },
      ])
      // A claimed (running) execution is not queued any more.
      expect((await claimOne(storage, { taskIds: ['gamma'] })).id).toBe(claimed.id)
      const later = await storage.queueStats(T0 + 1_000)
      expect(later).toEqual([
        { taskId: 'alpha', queued: 3, due: 2, oldestDueAt: T0 - 300 },
        { taskId: 'beta', queued: 1, due: 1, oldestDueAt: T0 + 1_000 },
      ])
    })
  })

  group('races', () => {
    wakeRaceConformance(test)
    fenceRaceConformance(test)
  })

  for (const title of skipped.keys()) {
    if (!declared.has(title))
      throw new Error(`${options.name}: the skip list names an unknown conformance test "${title}"`)
  }

  describe(`storage conformance: ${options.name}`, () => {
    for (const { name, cases } of groups) {
      describe(name, () => {
        for (const { title, body } of cases) declare(title, body)
      })
    }
  })
}
