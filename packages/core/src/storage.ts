import type { StepKind, StepStatus } from './durable-record'
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

/**
 * Notices from the database about writes made by any process (PostgreSQL: LISTEN/NOTIFY), so
 * several replicas wake each other without polling. Best effort and coalesced: a listener is
 * told that something may have changed, never what; callers re-read. Each `on…` returns its
 * unsubscribe function. Present only when `capabilities.listenNotify`.
 */
export interface StorageNotifications {
  /** Executions may have become claimable (an enqueue, a wake-up, a retry due now). */
  onWake(listener: () => void): () => void
  /** Status transitions may have been written (the change feed has news). */
  onChange(listener: () => void): () => void
  /**
   * The notification connection went down (`false`: notices may be missed until it is back, so
   * poll) or came back (`true`: re-read once, as anything may have changed meanwhile).
   */
  onConnection(listener: (up: boolean) => void): () => void
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

/** How a finished child ended, as its parent records it in the child's step record (see `childOutcome`). */
export type ChildOutcome = { status: 'done'; value: string } | { status: 'failed'; error: string }

/** One run of an execution: the fence of its writes. */
export interface RunRef {
  id: string
  /** The run number (`ExecutionRow.runs` as claimed). */
  run: number
}

/**
 * The result of a finished run, written fenced by `(id, run)`. `wakeParentId`: the
 * parent awaiting this execution, woken when it ends (the executor knows it from the claim).
 * `cancelChildren`: when the settlement ends the execution (complete, fail, time_out), its
 * children that it awaited (`ctx.child`) and that are not finished are cancelled with their
 * subtrees, with this error (JSON of a `StoredError`), in the same transaction. The executor
 * sets it only for executions that may have children, so plain tasks pay nothing for it.
 */
export type Settlement = {
  wakeParentId?: string | null
  cancelChildren?: { error: string }
  /**
   * When the settlement ends the execution: its outcome as its parent records it (see
   * `childOutcome`), written in the same transaction into the parent's record at `position`
   * if that record still waits on this execution. Set when the executor knows where the parent
   * recorded the child; otherwise the parent's run records it when it first sees the end.
   */
  parentRecord?: { parentId: string; position: number; outcome: ChildOutcome }
} & (
  | { transition: 'complete'; id: string; run: number; output: string }
  /**
   * running → waiting until `runAt` (the earliest sleep or wait timeout, or WAIT_FOREVER).
   * If something woke the execution while it ran (a signal, a child's end), it goes back to
   * queued at once instead: no wake-up is ever lost between a run's last read and its park.
   */
  | { transition: 'park'; id: string; run: number; runAt: number }
  /**
   * running → queued, due `delayMs` after the settlement is written (the back-off runs from
   * the time the failure is recorded, so the next run is never due before it).
   */
  | { transition: 'retry'; id: string; run: number; error: string; delayMs: number }
  /**
   * running → queued, due at once, as the next generation (`ctx.continueAsNew`): `input`
   * replaces the input, `generation` grows by one, failures and recoveries restart at 0, the
   * error is cleared, and the record (steps), the consumed signals and the history are deleted,
   * leaving one history row for this transition (detail `{"transition":"continue",
   * "generation":n}`). Unconsumed signals stay in the inbox. With `cancelChildren`, the unfinished
   * children it awaited are cancelled as when it ends.
   */
  | { transition: 'continue'; id: string; run: number; input: string }
  /** running → queued, due at once (graceful shutdown gave up on the run). */
  | { transition: 'release'; id: string; run: number; error: string }
  /**
   * `failedStep`: the record (a step, a wait, a child) whose recorded failure ended the run,
   * uncaught. Kept with the transition in the history; `rerun` forgets that record, and only it.
   */
  | {
      transition: 'fail' | 'time_out'
      id: string
      run: number
      error: string
      failedStep?: { position: number; name: string }
    }
)

export interface RecoverRequest {
  now: number
  /** Why the run was lost (JSON of a `StoredError`), kept in the history row of each recovery. */
  error: string
  /**
   * The error (JSON of a `StoredError`) of an execution that used up its recovery budget,
   * given its `maxRecoveries`.
   */
  exhaustedError: (maxRecoveries: number) => string
  /**
   * When given, an execution that fails this way (its recovery budget used up) cancels the
   * unfinished children it awaited, with their subtrees, with this error (as
   * `Settlement.cancelChildren`).
   */
  cancelChildrenError?: string
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
  /** The run that was lost. */
  run: number
  /** queued: recovered; failed: its recovery budget was used up (RECOVERIES_EXHAUSTED). */
  status: 'queued' | 'failed'
  /** Whether the lost run recorded progress (a step, wait or child record written since its claim). */
  progressed: boolean
  /** The execution's `recoveries` after this one (when failed: unchanged, at its maxRecoveries). */
  recoveries: number
  maxRecoveries: number
  /** The awaited children cancelled because it failed (see `cancelChildrenError`). */
  cancelledChildren: CancelledExecution[]
}

/** An execution that a cancel reached, with the status it was cancelled from. */
export interface CancelledExecution {
  id: string
  taskId: string
  run: number
  cancelledFrom: ExecutionStatus
}

export interface SettleOutcome {
  /** Per settlement, whether its fence held (false: a stale run, nothing written). */
  applied: boolean[]
  /** Executions cancelled because a settled execution ended (see `Settlement.cancelChildren`). */
  cancelled: CancelledExecution[]
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

export interface RerunOutcome {
  row: ExecutionRow
  /** The status it was rerun from; null when it was not rerun. */
  rerunFrom: ExecutionStatus | null
  /** Descendants rerun with it: those cancelled because it ended (`PARENT_ENDED`). */
  descendants: { id: string; taskId: string; run: number }[]
}

export interface CancelOutcome {
  /** The execution after the call. */
  row: ExecutionRow
  /** The status it was cancelled from; `null` when it was already terminal (nothing changed). */
  cancelledFrom: ExecutionStatus | null
  /** Descendants cancelled with it (the whole subtree below it that was not finished). */
  descendants: CancelledExecution[]
}

/** One entry of an execution's durable record. */
export interface StepRow {
  executionId: string
  position: number
  name: string
  kind: StepKind
  status: StepStatus
  /** JSON text of the step's value, the signal's payload, the child's output. */
  value: string | null
  /** JSON text of a `StoredError`. */
  error: string | null
  wakeAt: number | null
  childId: string | null
  signalName: string | null
  wakeupKey: string | null
  createdAt: number
  completedAt: number | null
}

export interface SignalRow {
  seq: number
  executionId: string
  name: string
  /** JSON text. */
  payload: string
  createdAt: number
  consumedBy: string | null
}

export interface ChildState {
  id: string
  status: ExecutionStatus
  output: string | null
  error: string | null
}

/**
 * What a replay needs: the record, the unconsumed signals, and the states of the children the
 * record still waits for (a child the run consumed is in the record, done or failed).
 */
export interface RunState {
  steps: StepRow[]
  inbox: SignalRow[]
  children: ChildState[]
}

/** A step record written by a run, fenced by (executionId, run). */
export interface StepWrite {
  executionId: string
  run: number
  step: Omit<StepRow, 'executionId' | 'createdAt' | 'completedAt'>
  /** Marks this inbox signal consumed by the step, in the same transaction. */
  consumeSignalSeq?: number
  /** Enqueues this child with the step (ctx.child, ctx.spawn), in the same transaction. */
  child?: NewExecution
}

export type StepWriteResult = 'written' | 'stale' | 'conflict' | 'superseded'

export type WakeupOutcome =
  | { result: 'not_found' }
  | { result: 'finished'; executionId: string }
  | { result: 'woken'; executionId: string }

export type SignalOutcome =
  | { result: 'not_found' }
  | { result: 'finished'; status: ExecutionStatus }
  | { result: 'stored'; seq: number; row: ExecutionRow }

export interface ListQuery {
  taskId?: string
  parentId?: string
  rootId?: string
  statuses?: readonly ExecutionStatus[]
  /** Return executions with ids below this one (ids are time-ordered: newest first). */
  beforeId?: string
  /** Created at or after this time (ms). */
  createdFrom?: number
  /** Created before this time (ms). */
  createdTo?: number
  idempotencyKey?: string
  limit: number
}

/**
 * An execution as `list` returns it: the row without its payloads (`input`, `output`) and
 * without the columns only the engine's internals use. Adapters read only these columns.
 */
export interface ExecutionSummaryRow {
  id: string
  taskId: string
  status: ExecutionStatus
  /** JSON text of `{ name, message, code? }`: the stored error reduced to those fields. */
  error: string | null
  runs: number
  failures: number
  maxAttempts: number
  recoveries: number
  maxRecoveries: number
  timeoutMs: number
  priority: number
  idempotencyKey: string | null
  runAt: number
  createdAt: number
  updatedAt: number
  startedAt: number | null
  finishedAt: number | null
  parentId: string | null
  rootId: string | null
  deadlineAt: number | null
}

export interface HistoryQuery {
  /** Only rows after this seq. */
  afterSeq?: number
  /** At most this many rows. @default all */
  limit?: number
  /** Only status transitions (`event = 'status'`). */
  statusOnly?: boolean
}

export interface StepsQuery {
  /** Only records after this position. */
  afterPosition?: number
  limit: number
}

/** Per task, from one grouped read: counts by status and the due part of its queue. */
export interface TaskStatsRow {
  taskId: string
  counts: Record<ExecutionStatus, number>
  /** Queued executions with `runAt <= now`. */
  queueDepth: number
  /** The smallest `runAt` of those, or null. */
  oldestQueuedAt: number | null
}

export interface ThroughputQuery {
  taskId?: string
  /** Inclusive, ms. */
  from: number
  /** Exclusive, ms. */
  to: number
  bucketMs: number
}

/** One non-empty bucket: index `bucket` covers `[from + bucket * bucketMs, from + (bucket + 1) * bucketMs)`. */
export interface ThroughputRow {
  bucket: number
  /** Executions that ended in the bucket (by `finishedAt`), by final status. */
  completed: number
  failed: number
  timedOut: number
  cancelled: number
  /** Executions whose first run started in the bucket (by `startedAt`). */
  started: number
}

/**
 * A position in the change feed (`Storage.changesSince`): opaque outside the adapter that made
 * it, compared for equality only, matching `^\d{1,20}(\.\d{1,20})?$` (`CHANGE_CURSOR_PATTERN`).
 * `''` is the position before the first change. SQLite: the history seq (`"42"`); PostgreSQL:
 * `"<xid>.<seq>"` (a bare `"N"` there means `"0.N"`).
 */
export type ChangeCursor = string

export interface ChangesQuery {
  /** Only changes after this cursor (a `ChangeRow.cursor` or a `changeCursor()`); `''`: from the first change. */
  after: ChangeCursor
  limit: number
  taskId?: string
  /** This execution and its descendants. */
  rootId?: string
}

/** A status transition of any execution, with what a change feed needs to filter it. */
export interface ChangeRow {
  /** Its position in the change feed: resume with `changesSince({ after: cursor })`. */
  cursor: ChangeCursor
  /** Its history seq (`HistoryRow.seq`): orders the changes of one execution, not of several. */
  seq: number
  executionId: string
  taskId: string
  /** The top of its tree (its own id for a top-level execution). */
  rootId: string
  parentId: string | null
  from: ExecutionStatus | null
  to: ExecutionStatus
  run: number
  at: number
}

export interface HistoryRow {
  /** Monotonic per database. */
  seq: number
  executionId: string
  at: number
  from: ExecutionStatus | null
  to: ExecutionStatus
  /** The run it happened in (`runs` at the time; 0 before the first claim). */
  run: number
  /** JSON text, e.g. the error of a failed attempt. */
  detail: string | null
  /** 'status' for a transition, else what happened inside one: 'step', 'wait', 'signal', 'child', 'wakeup'. */
  event: string
  /** The step, wait or signal name of a non-status event. */
  name: string | null
}

/** What `Storage.purge` deletes: whole finished trees older than their root task's retention. */
export interface PurgeRequest {
  now: number
  /**
   * How long a finished tree is kept (ms after its root finished) when its root's task is not in
   * `retentionByTask`, and how long published events are kept; `null` keeps them forever.
   */
  defaultRetentionMs: number | null
  /** Per root task id: its retention in ms, or `null` to keep its trees forever. */
  retentionByTask: Readonly<Record<string, number | null>>
  /** Most rows (of every table together) deleted by this call, in one transaction. */
  limit: number
}

/** Rows deleted by one `purge` call, by table. */
export interface PurgeOutcome {
  executions: number
  history: number
  steps: number
  signals: number
  events: number
  /** The call stopped at its `limit`: more is due, call again. */
  more: boolean
}

export interface Storage {
  readonly capabilities: StorageCapabilities
  /** Cross-process notices; present when `capabilities.listenNotify`. */
  readonly notifications?: StorageNotifications
  /**
   * Inserts executions (with their `enqueue` history rows) in one transaction. An existing
   * (taskId, idempotencyKey) returns the existing row with `created: false` when its input is
   * the same JSON value (`sameJson`: key order does not count), and throws `ConflictError`
   * (writing nothing at all) when it is not.
   */
  enqueue(executions: readonly NewExecution[], now: number): Promise<EnqueueOutcome[]>
  /**
   * queued → running for up to `limit` due executions (`run_at <= now`): highest priority
   * first; within a priority, round-robin across tasks (so one task's backlog cannot starve the
   * others), and within a task the oldest run_at first (a woken execution's run_at is when it
   * was woken). Does nothing else: waiters whose time came and deadlines that passed are
   * `housekeep`'s (so concurrent claimers never contend on them). `limit` 0 or no `taskIds`
   * claims nothing. Each claim appends a `queued → running` history row.
   */
  claim(request: ClaimRequest): Promise<ClaimOutcome>
  /**
   * The timers' work, due at `now`, in one transaction of at most `limit` changed executions:
   * waiting executions whose `run_at` came (a sleep ended, a wait timed out) go back to queued
   * (the `wake` transition, reason `due`), then queued and waiting executions past their
   * `deadline_at` end `timed_out` (the `expire` transition: a failed attempt; a parent awaiting
   * one is woken). Every task's, not only this process's. Each change appends a history row and
   * is returned for the change feed. `more`: the limit was reached, call again. `busy`: another
   * process is doing it right now and this call did nothing (retry shortly, e.g. in 100 ms);
   * never on a single-writer adapter.
   */
  housekeep(now: number, limit: number): Promise<HousekeepOutcome>
  /**
   * Writes finished runs in one transaction: per settlement whether its fence held, and
   * the children cancelled because their parent ended.
   */
  settle(settlements: readonly Settlement[], now: number): Promise<SettleOutcome>
  /** Extends the leases of running runs. Returns the ones that are no longer this owner's. */
  extendLeases(owner: string, leases: readonly RunRef[], now: number, leaseMs: number): Promise<RunRef[]>
  /**
   * Recovers runs lost to a crash: running executions whose lease expired (or, single-writer
   * only, whose owner is not the caller). A lost run is not a failed attempt: `failures` does
   * not change. Each recovery counts in `recoveries`: the lost run's count restarts at 1 when
   * it recorded progress (a step, wait or child record created or completed since its claim),
   * else grows by one. While it stays within `maxRecoveries` the execution goes back to queued,
   * due now; past it, it ends `failed` with `exhaustedError` (a failed attempt: `failures`
   * grows), wakes the parent awaiting it and, with `cancelChildrenError`, cancels the children
   * it awaited. Each recovery appends a history row (`recover` or `abandon`).
   */
  recoverLeases(request: RecoverRequest): Promise<RecoveredExecution[]>
  /**
   * Cancels a non-terminal execution (storing `error`) and every unfinished descendant
   * (storing `descendantError`, by default `error`), in one transaction. Waiting parents of
   * cancelled executions that are not themselves cancelled are woken. `undefined` when the
   * id is unknown.
   */
  cancel(id: string, now: number, error: string, descendantError?: string): Promise<CancelOutcome | undefined>
  /**
   * Records a published event and enqueues the executions it starts, in one transaction
   * (as `enqueue` does for each). An event whose `publishId` was recorded before is a repeat:
   * nothing is written, and a different payload (by `sameJson`) throws `ConflictError`.
   */
  publishEvent(event: EventRow, executions: readonly NewExecution[], now: number): Promise<PublishOutcome>
  /** Recorded events, newest first. */
  listEvents(query: { type?: string; beforeId?: string; limit: number }): Promise<EventRow[]>
  /**
   * failed | timed_out | cancelled → queued (the `rerun` transition), with failures reset. The
   * record its last `fail` names (`Settlement.failedStep`) is forgotten: a step or wait record is
   * deleted, a child record waits on its child again; every other record is kept. Descendants that were cancelled
   * because it (or one of them) ended — stored error code `PARENT_ENDED` — are rerun with it,
   * in the same transaction. `rerunFrom: null` when the status does not allow it (nothing
   * written); `undefined` when the id is unknown.
   */
  rerun(id: string, now: number): Promise<RerunOutcome | undefined>
  /** The durable record of an execution, its unconsumed signals and the children it still waits for. */
  loadRunState(executionId: string): Promise<RunState>
  /**
   * Writes step records (with their signal consumptions and children) in one transaction.
   * Per write: 'written'; 'stale' when its fence failed (nothing written); 'conflict' when
   * its wakeup key is already used by another wait (nothing written); 'superseded' when the
   * record at its position is no longer waiting (completed from outside since the attempt
   * read it; nothing written).
   */
  recordSteps(writes: readonly StepWrite[], now: number): Promise<StepWriteResult[]>
  /**
   * Completes the wait registered under `key` (`ctx.waitForWakeup`) with a value or an error
   * (JSON text), and wakes its execution.
   */
  wakeup(key: string, result: { value: string } | { error: string }, now: number): Promise<WakeupOutcome>
  /** Stores a signal in the execution's inbox and wakes it. */
  signal(executionId: string, name: string, payload: string, now: number): Promise<SignalOutcome>
  get(id: string): Promise<ExecutionRow | undefined>
  /**
   * Summaries (no payload columns read), newest first (ids are time-ordered), filtered and
   * keyset-paginated by id. `rootId` matches the root itself and every execution below it.
   */
  list(query: ListQuery): Promise<ExecutionSummaryRow[]>
  /**
   * The execution's history, oldest first: every row, or with `afterSeq` only the rows after
   * it, with `statusOnly` only status transitions (`event = 'status'`), at most `limit`.
   * Empty for an unknown id.
   */
  history(id: string, options?: HistoryQuery): Promise<HistoryRow[]>
  /** The execution's durable record by position, after `afterPosition`, at most `limit`. */
  steps(id: string, query: StepsQuery): Promise<StepRow[]>
  /**
   * Per task with any execution: counts by status, and the queued ones due at `now`. One
   * grouped read; tasks without executions are absent.
   */
  taskStats(now: number): Promise<TaskStatsRow[]>
  /**
   * Executions ended (by `finishedAt`, per final status) and first started (by `startedAt`)
   * in `[from, to)`, per bucket of `bucketMs`; buckets with nothing are absent.
   */
  throughput(query: ThroughputQuery): Promise<ThroughputRow[]>
  /**
   * Status transitions of every execution after the cursor `after`, in feed order, at most
   * `limit`, optionally of one task or one tree. A reader that resumes after the last cursor it
   * saw misses nothing and sees nothing twice: a change committed later never lands before a
   * cursor already returned. A cursor stays valid after `purge` deletes its row.
   */
  changesSince(query: ChangesQuery): Promise<ChangeRow[]>
  /**
   * The cursor of the latest change a `changesSince` would return now, of any kind of history row
   * (`''` when none yet): cheap, for change detection (compare with the previous value) and
   * "from now" starts (every change after it is one committed later, or not yet visible).
   */
  changeCursor(): Promise<ChangeCursor>
  /**
   * Deletes, in one transaction of at most `limit` rows, finished execution trees whose root
   * finished before its retention's cutoff (`now - retention`) and every member of which is
   * terminal: their executions (idempotency keys with them), history, step records (wakeup keys
   * with them) and signals; and published events older than the default retention. An
   * unfinished root keeps its whole tree, finished children included; a tree larger than
   * `limit` goes over several calls, children first, the root last (so it stays findable until
   * its last row is gone). Oldest roots first. Never touches a non-terminal execution.
   */
  purge(request: PurgeRequest): Promise<PurgeOutcome>
  /**
   * Gives up to `maxPages` free database pages back to the file system (SQLite: `PRAGMA
   * incremental_vacuum`), so the file stops growing after purges. Returns the free pages left;
   * an adapter whose database reclaims space by itself returns 0 and does nothing.
   */
  reclaimSpace(maxPages: number): Promise<{ freedPages: number; freePages: number }>
  /**
   * When the executor's due timer should fire next, or `null` when nothing is scheduled: the
   * earliest of the `run_at` of a queued execution of these tasks (a delayed enqueue, a retry's
   * back-off: then `claim`), the `run_at` of any waiting execution (a sleep's end, a wait's
   * timeout; `WAIT_FOREVER` does not count) and the `deadline_at` of any queued or waiting
   * execution (both: then `housekeep`). May be in the past (work already due). One cheap
   * indexed read: it never reads rows that are not the earliest of their kind.
   */
  nextDueAt(taskIds: readonly string[]): Promise<number | null>
  /**
   * The queue of every task that has queued executions, in one grouped read (for metrics):
   * how many are queued, how many of those are due at `now`, and the oldest due `run_at`.
   * Tasks with nothing queued are absent.
   */
  queueStats(now: number): Promise<QueueStats[]>
  close(): Promise<void>
}

/** One task's queue (`Storage.queueStats`). */
export interface QueueStats {
  taskId: string
  /** Queued executions, due or not (a delayed enqueue, a retry's back-off). */
  queued: number
  /** Queued executions whose `run_at` has come: waiting for a worker slot. */
  due: number
  /** The earliest `run_at` of a due one (how long the oldest has waited), or `null`. */
  oldestDueAt: number | null
}
