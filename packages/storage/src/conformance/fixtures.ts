import { expect } from 'vitest'
import {
  newExecutionId,
  type ClaimRequest,
  type ExecutionRow,
  type NewExecution,
  type RecoverRequest,
  type StepWrite,
  type Storage,
} from '@ratchet/core'

/**
 * What every conformance module shares: how a test is declared, the clock origin, and the
 * helpers that build executions and drive them (enqueue, claim, records). Modules register
 * their tests through a {@link ConformanceDeclarer} that `runStorageConformance` hands them.
 */

/**
 * A test's body. `open()` gives the test's storage on the first call (a fresh, empty database)
 * and, on later calls, another connection to the same database (`openSecondConnection`; the
 * same storage when the adapter has none). The runner closes them all.
 */
export type ConformanceBody = (open: () => Promise<Storage>) => Promise<void>

/** Declares one conformance test: its title is what an adapter's skip list names. */
export type DeclareTest = (title: string, body: ConformanceBody) => void

export interface ConformanceDeclarer {
  /** Opens a group (a `describe` block); the tests declared inside `gather` belong to it. */
  group: (name: string, gather: () => void) => void
  test: DeclareTest
}

/** The clock origin of the suite: every `now` is T0 plus something. */
export const T0 = Date.UTC(2030, 0, 1)
export const LEASE_MS = 30_000
export const BACKOFF = { initialMs: 1000, factor: 2, maxMs: 60_000 }
export const WORKER_A = 'worker-a'
export const WORKER_B = 'worker-b'

/** The JSON of a `StoredError` with this message. */
export const storedError = (message: string) => JSON.stringify({ name: 'Error', message, retryable: true })

/**
 * The JSON of a `StoredError` with everything a stored error may hold (a code, a long stack,
 * data): what `list` summaries reduce to name, message and code.
 */
export const detailedError = (message: string) =>
  JSON.stringify({
    name: 'TypeError',
    message,
    code: 'E_BAD',
    retryable: false,
    stack: 'TypeError: '.padEnd(10_000, 'x'),
    data: { big: 'y'.repeat(10_000) },
  })

/** The error of an execution past its recovery budget, as the engine would store it. */
export const exhaustedError = (maxRecoveries: number) =>
  JSON.stringify({
    name: 'RecoveriesExhaustedError',
    message: `more than ${maxRecoveries} recoveries`,
    code: 'RECOVERIES_EXHAUSTED',
    retryable: false,
  })

/** What `recoverLeases` reports for a run lost for the first time, without progress (defaults). */
export const firstRecovery = (id: string, taskId: string) => ({
  id,
  taskId,
  run: 1,
  status: 'queued',
  progressed: false,
  recoveries: 1,
  maxRecoveries: 5,
  cancelledChildren: [],
})

/** A recoverLeases request (lost runs' error: `lease expired`), limit 10 unless given. */
export function recoverRequest(request: Partial<RecoverRequest> & { now: number }): RecoverRequest {
  return { error: storedError('lease expired'), exhaustedError, limit: 10, ...request }
}

/** What a test may set of a new execution (see {@link newExecution}). */
export type ExecutionOverrides = Partial<NewExecution> & { label?: string }

/** A new execution of task `alpha`, due at T0; `label` ends up in its input. */
export function newExecution(overrides: ExecutionOverrides = {}): NewExecution {
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

/** The `label` an execution was enqueued with (see {@link newExecution}). */
export const labelOf = (row: ExecutionRow) => (JSON.parse(row.input) as { label: string }).label

/** Enqueues one new execution (it must be created) and returns its row. */
export async function enqueueOne(
  storage: Storage,
  overrides: ExecutionOverrides = {},
  now = T0,
): Promise<ExecutionRow> {
  const [outcome] = await storage.enqueue([newExecution(overrides)], now)
  expect(outcome?.created).toBe(true)
  return outcome!.row
}

/** A claim by WORKER_A at T0 of up to 100 `alpha` executions, unless overridden. */
export function claimRequest(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return { owner: WORKER_A, now: T0, leaseMs: LEASE_MS, limit: 100, taskIds: ['alpha'], ...overrides }
}

/** Claims exactly one execution and returns it. */
export async function claimOne(
  storage: Storage,
  overrides: Partial<ClaimRequest> = {},
): Promise<ExecutionRow> {
  const rows = (await storage.claim(claimRequest({ limit: 1, ...overrides }))).claimed
  expect(rows).toHaveLength(1)
  return rows[0]!
}

/** Enqueues one execution of its own task and claims it: a running run 1. */
export async function runningOne(
  storage: Storage,
  overrides: ExecutionOverrides = {},
  claim: Partial<ClaimRequest> = {},
): Promise<ExecutionRow> {
  const queued = await enqueueOne(storage, overrides)
  const row = await claimOne(storage, { taskIds: [queued.taskId], ...claim })
  expect(row.id).toBe(queued.id)
  return row
}

export async function mustGet(storage: Storage, id: string): Promise<ExecutionRow> {
  const row = await storage.get(id)
  if (!row) throw new Error(`execution ${id} is missing`)
  return row
}

/** The full rows of listed summaries. */
export async function fullRows(storage: Storage, listed: readonly { id: string }[]): Promise<ExecutionRow[]> {
  return Promise.all(listed.map((r) => mustGet(storage, r.id)))
}

export async function countAll(storage: Storage): Promise<number> {
  return (await storage.list({ limit: 10_000 })).length
}

type Step = StepWrite['step']

/** A step record at `position`: a `step` done with value `'1'`, unless overridden. */
export function stepRecord(position: number, overrides: Partial<Step> = {}): Step {
  return {
    position,
    name: `s${position}`,
    kind: 'step',
    status: 'done',
    value: '1',
    error: null,
    wakeAt: null,
    childId: null,
    signalName: null,
    wakeupKey: null,
    ...overrides,
  }
}

/** A waiting `ctx.waitForWakeup` record under `key`. */
export const wakeupRecord = (position: number, key: string): Step =>
  stepRecord(position, {
    name: `w${position}`,
    kind: 'wakeup',
    status: 'waiting',
    value: null,
    wakeupKey: key,
  })

/** A waiting `ctx.child` record of `childId`. */
export const childRecord = (position: number, childId: string): Step =>
  stepRecord(position, { name: `kid-${position}`, kind: 'child', status: 'waiting', value: null, childId })

/** The status transitions of an execution's history, as `[from, to]` pairs. */
export async function transitions(storage: Storage, id: string): Promise<[string | null, string][]> {
  return (await storage.history(id, { statusOnly: true })).map((h) => [h.from, h.to])
}

/** Rounds of each race test: enough for a window of a few statements to be hit on PostgreSQL. */
export const RACE_ROUNDS = 50

/**
 * Starts `a` and `b` together (on two connections) and waits for both; which one is started first
 * alternates with `round`, so either side gets the head start.
 */
export function race<A, B>(round: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (round % 2 === 0) return Promise.all([a(), b()])
  const second = b()
  const first = a()
  return Promise.all([first, second])
}
