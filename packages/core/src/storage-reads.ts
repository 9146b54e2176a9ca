/**
 * The storage port's read queries and the rows they return (list, history, steps, statistics,
 * the change feed). storage.ts re-exports them.
 */
import type { ExecutionStatus } from './state-machine'

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

/** A task queue's state set at run time (`Storage.setTaskPaused`); a task without one is not paused. */
export interface TaskQueueRow {
  taskId: string
  /** Since when the queue is paused, or `null`. */
  pausedAt: number | null
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
