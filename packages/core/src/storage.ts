import type { BackoffOptions } from './retry-policy'
import type { ExecutionStatus } from './state-machine'

/**
 * The Storage port. Adapters (SQLite, PostgreSQL) own their transactions: every method is
 * one atomic unit, and the engine never holds a transaction open across an await.
 *
 * Payloads (`input`, `output`) and errors are JSON text, serialized once by the engine;
 * adapters store and return them untouched. Times are epoch milliseconds, always passed in
 * as `now` (from the engine's Clock), never read from the database's clock.
 */
export interface StorageCapabilities {
  /** Claims use `FOR UPDATE SKIP LOCKED` (several claimers at once). */
  readonly skipLocked: boolean
  /** Other processes can be woken through LISTEN/NOTIFY. */
  readonly listenNotify: boolean
  /**
   * Only one process may use the database. At start-up every running lease belongs to a
   * dead process and can be recovered at once, without waiting for it to expire.
   */
  readonly singleWriter: boolean
}

/** One execution as stored. */
export interface ExecutionRow {
  id: string
  taskId: string
  status: ExecutionStatus
  /** JSON text. */
  input: string
  /** JSON text; set when completed. */
  output: string | null
  /** JSON text of a `StoredError`: the final error, or the last attempt's while retrying. */
  error: string | null
  /** Attempts started so far (0 while never claimed). */
  attempt: number
  maxAttempts: number
  timeoutMs: number
  /** JSON text of `BackoffOptions`, snapshotted at enqueue. */
  backoff: string
  priority: number
  idempotencyKey: string | null
  /** Not claimable before this time. */
  runAt: number
  leaseOwner: string | null
  leaseExpiresAt: number | null
  createdAt: number
  updatedAt: number
  /** When the first attempt started. */
  startedAt: number | null
  finishedAt: number | null
}

export interface NewExecution {
  id: string
  taskId: string
  input: string
  maxAttempts: number
  timeoutMs: number
  backoff: BackoffOptions
  priority: number
  idempotencyKey: string | null
  runAt: number
}

export interface EnqueueOutcome {
  row: ExecutionRow
  /** False when an execution with the same (taskId, idempotencyKey) already existed. */
  created: boolean
}

export interface ClaimRequest {
  /** The claiming worker, stored as the lease owner. */
  owner: string
  now: number
  leaseMs: number
  limit: number
  /** Only executions of these tasks are claimed. */
  taskIds: readonly string[]
}

export interface AttemptRef {
  id: string
  attempt: number
}

/** The result of a finished attempt, written fenced by `(id, attempt)`. */
export type Settlement =
  | { transition: 'complete'; id: string; attempt: number; output: string }
  | { transition: 'retry'; id: string; attempt: number; error: string; runAt: number }
  | { transition: 'release'; id: string; attempt: number; error: string; runAt: number }
  | { transition: 'fail' | 'time_out'; id: string; attempt: number; error: string }

export interface RecoverRequest {
  now: number
  /** Stored as the error of each recovered execution (JSON of a `StoredError`). */
  error: string
  limit: number
  /**
   * Also recover unexpired leases whose owner is not this one. Only sound when the adapter
   * is `singleWriter`: then no other process can be alive.
   */
  everyOwnerBut?: string
}

export interface RecoveredExecution {
  id: string
  taskId: string
  /** The attempt that was lost. */
  attempt: number
  status: 'queued' | 'failed'
}

export interface CancelOutcome {
  /** The execution after the call. */
  row: ExecutionRow
  /** The status it was cancelled from; `null` when it was already terminal (nothing changed). */
  cancelledFrom: ExecutionStatus | null
}

export interface ListQuery {
  taskId?: string
  statuses?: readonly ExecutionStatus[]
  /** Return executions with ids below this one (ids are time-ordered: newest first). */
  beforeId?: string
  limit: number
}

export interface HistoryRow {
  /** Monotonic per database. */
  seq: number
  executionId: string
  at: number
  from: ExecutionStatus | null
  to: ExecutionStatus
  attempt: number
  /** JSON text, e.g. the error of a failed attempt. */
  detail: string | null
}

export interface Storage {
  readonly capabilities: StorageCapabilities
  /**
   * Inserts executions (with their `enqueue` history rows) in one transaction. An existing
   * (taskId, idempotencyKey) returns the existing row with `created: false` when its input is
   * the same JSON text, and throws `ConflictError` (writing nothing at all) when it is not.
   */
  enqueue(executions: readonly NewExecution[], now: number): Promise<EnqueueOutcome[]>
  /** queued → running for up to `limit` due executions, highest priority, then oldest run_at first. */
  claim(request: ClaimRequest): Promise<ExecutionRow[]>
  /** Writes finished attempts in one transaction. Returns, per settlement, whether its fence held. */
  settle(settlements: readonly Settlement[], now: number): Promise<boolean[]>
  /** Extends the leases of running attempts. Returns the ones that are no longer this owner's. */
  extendLeases(
    owner: string,
    leases: readonly AttemptRef[],
    now: number,
    leaseMs: number,
  ): Promise<AttemptRef[]>
  /** Requeues (or fails, when attempts are used up) executions whose lease expired. */
  recoverLeases(request: RecoverRequest): Promise<RecoveredExecution[]>
  /** Cancels a non-terminal execution. `undefined` when the id is unknown. */
  cancel(id: string, now: number, error: string): Promise<CancelOutcome | undefined>
  get(id: string): Promise<ExecutionRow | undefined>
  list(query: ListQuery): Promise<ExecutionRow[]>
  history(id: string): Promise<HistoryRow[]>
  /** The earliest `run_at` of a queued execution of these tasks, or `null`. */
  nextRunAt(taskIds: readonly string[]): Promise<number | null>
  close(): Promise<void>
}
