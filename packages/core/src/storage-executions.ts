/**
 * Execution rows as the storage port stores them, and what the writes that create and claim
 * them take and return (enqueue, publish, claim, housekeep). storage.ts re-exports them.
 */
import type { BackoffOptions } from './retry-policy'
import type { ExecutionStatus } from './state-machine'

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
  /**
   * Runs so far: every claim of the execution (0 while never claimed), resumes after waits and
   * crash recoveries included. The fence of every write a run makes (SQL column `attempt`).
   */
  runs: number
  /**
   * Failed attempts so far: errors, timeouts, an expired deadline, and the run that used up the
   * recovery budget. Not the runs lost to a crash that were recovered. `maxAttempts` bounds it.
   */
  failures: number
  maxAttempts: number
  /**
   * Recoveries in a row: runs lost to a crash (lease expired, process died) and recovered
   * since the execution last made progress. A lost run that recorded progress restarts the
   * count at 1; a run that ends by itself (complete, park, retry, fail, time_out) and a rerun
   * reset it to 0. `maxRecoveries` bounds it; see `recoverLeases`.
   */
  recoveries: number
  maxRecoveries: number
  /** When the latest run was claimed (null before the first): the lost run's records are those written since. */
  claimedAt: number | null
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
  parentId: string | null
  /** The top of the tree, for a child; `null` for a top-level execution (it is its own root). */
  rootId: string | null
  /** 1 when the parent awaits it (ctx.child), else 0. */
  wakesParent: number
  deadlineAt: number | null
  /** Internal: something woke it while it ran, so its next park requeues it. */
  wakePending: number
  /** Fresh starts of its body: 0, then one more per `ctx.continueAsNew`. */
  generation: number
  /** A debounced task's key (`TaskDefinition.debounce`), else null. */
  debounceKey: string | null
}

export interface NewExecution {
  id: string
  taskId: string
  input: string
  maxAttempts: number
  maxRecoveries: number
  timeoutMs: number
  backoff: BackoffOptions
  priority: number
  idempotencyKey: string | null
  runAt: number
  /** Set for children only. */
  parentId?: string | null
  rootId?: string | null
  wakesParent?: boolean
  deadlineAt?: number | null
  /**
   * A debounced enqueue (see `TaskDefinition.debounce`): when an execution of the task with this
   * key is queued and has never run, it takes this row's input and `runAt` (bounded by its
   * `createdAt + maxWaitMs`) instead of a new row being inserted.
   */
  debounce?: { key: string; maxWaitMs: number | null } | null
}

export interface EnqueueOutcome {
  row: ExecutionRow
  /**
   * False when an execution with the same (taskId, idempotencyKey) already existed, or a
   * debounced enqueue collapsed into one that was queued.
   */
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

/** A status change made by storage on its own (a timer or deadline), for the change feed. */
export interface StatusChange {
  id: string
  taskId: string
  from: ExecutionStatus
  to: ExecutionStatus
  /** The execution's run count (`ExecutionRow.runs`) at the change. */
  run: number
}

export interface ClaimOutcome {
  /** The executions claimed (queued → running), in claim order. */
  claimed: ExecutionRow[]
  /**
   * Whether no due execution of `taskIds` was left behind as of the claim: fewer than `limit`
   * were claimed and none was passed over (locked by another claimer, or changed while the
   * claim read it). `false` when unsure. The claim loop then waits for a wake-up before it
   * claims again for a freed slot.
   */
  drained: boolean
}

/** What one `Storage.housekeep` call did. */
export interface HousekeepOutcome {
  /**
   * The changes it made, at `now`: waiting executions whose time came (→ queued) and queued or
   * waiting ones past their deadline (→ timed_out), for the change feed.
   */
  changed: StatusChange[]
  /** It stopped at its `limit`: more may be due, call again. */
  more: boolean
  /**
   * Another process is housekeeping right now (PostgreSQL: it holds the advisory lock), so this
   * call did nothing; try again shortly. Always false on a single-writer adapter.
   */
  busy: boolean
}

/** A published event, as recorded. */
export interface EventRow {
  /** UUIDv7: time-ordered. */
  id: string
  type: string
  /** JSON text of the whole event. */
  payload: string
  createdAt: number
  /** JSON array of the execution ids it started. */
  executionIds: string
  /** The id given to publish, if any: the same one again is the same event. */
  publishId: string | null
}

export interface PublishOutcome {
  /** The event as recorded: the new one, or the earlier one with the same `publishId`. */
  event: EventRow
  /** The executions started now (none for a repeat). */
  outcomes: EnqueueOutcome[]
  /** An event with this `publishId` was already recorded, with the same payload. */
  repeat: boolean
}
