import type {
  ClaimOutcome,
  ClaimRequest,
  EnqueueOutcome,
  EventRow,
  ExecutionRow,
  HousekeepOutcome,
  NewExecution,
  PublishOutcome,
} from './storage-executions'
import type {
  ChangeCursor,
  ChangeRow,
  ChangesQuery,
  ExecutionSummaryRow,
  HistoryQuery,
  HistoryRow,
  ListQuery,
  QueueStats,
  TaskQueueRow,
  StepsQuery,
  TaskStatsRow,
  ThroughputQuery,
  ThroughputRow,
} from './storage-reads'
import type {
  RunState,
  SignalOutcome,
  StepRow,
  StepWrite,
  StepWriteResult,
  WakeupOutcome,
} from './storage-records'
import type {
  CancelOutcome,
  RecoverRequest,
  RecoveredExecution,
  RerunOutcome,
  RunRef,
  SettleOutcome,
  Settlement,
} from './storage-settlements'

export type {
  ExecutionRow,
  NewExecution,
  EnqueueOutcome,
  ClaimRequest,
  StatusChange,
  ClaimOutcome,
  HousekeepOutcome,
  EventRow,
  PublishOutcome,
} from './storage-executions'
export type {
  ChildOutcome,
  RunRef,
  Settlement,
  RecoverRequest,
  RecoveredExecution,
  CancelledExecution,
  SettleOutcome,
  RerunOutcome,
  CancelOutcome,
} from './storage-settlements'
export type {
  StepRow,
  SignalRow,
  ChildState,
  RunState,
  StepWrite,
  StepWriteResult,
  WakeupOutcome,
  SignalOutcome,
} from './storage-records'
export type {
  ListQuery,
  ExecutionSummaryRow,
  HistoryQuery,
  StepsQuery,
  TaskStatsRow,
  ThroughputQuery,
  ThroughputRow,
  ChangeCursor,
  ChangesQuery,
  ChangeRow,
  HistoryRow,
  QueueStats,
  TaskQueueRow,
} from './storage-reads'

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
  /**
   * Executions may have become claimable (an enqueue, a wake-up, a retry due now), by a write of
   * another process: a storage's own writes do not wake its own listeners, since the one engine
   * using it wakes itself for them (`Executor.wake`, a flush), as on a storage without notices.
   * One engine per storage: a second engine on the same storage would not hear the first's.
   */
  onWake(listener: () => void): () => void
  /** Status transitions may have been written (the change feed has news). */
  onChange(listener: () => void): () => void
  /**
   * The notification connection went down (`false`: notices may be missed until it is back, so
   * poll) or came back (`true`: re-read once, as anything may have changed meanwhile).
   */
  onConnection(listener: (up: boolean) => void): () => void
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
  /**
   * Pauses (`paused`) or resumes a task's queue, for every process: `claim` and `nextDueAt`
   * pass over a paused task's queued executions (a claim already running may still take some);
   * enqueues and running attempts are not touched. Pausing a paused queue keeps its `pausedAt`.
   * Resuming wakes the claimers of every process. Returns the queue's state.
   */
  setTaskPaused(taskId: string, paused: boolean, now: number): Promise<TaskQueueRow>
  /** Every task queue with a state set (paused ones, and ones resumed since), by task id. */
  taskQueues(): Promise<TaskQueueRow[]>
  close(): Promise<void>
}
