/**
 * What the engine reports about an execution (`Execution`, `HistoryEvent`), built from its
 * stored row and history: now (`toExecution`), or as it was at any moment (`executionAsOf`).
 */
import { NotFoundError, type StoredError } from './errors'
import { parsePayload } from './payload'
import { isTerminalStatus, type ExecutionStatus } from './state-machine'
import type { ExecutionRow, ExecutionSummaryRow, HistoryRow } from './storage'

/** An execution as the engine reports it. Times are epoch ms. */
export interface Execution {
  id: string
  taskId: string
  status: ExecutionStatus
  input: unknown
  output: unknown
  error: StoredError | null
  /**
   * Runs so far: every time a worker took the execution up, resumes after durable waits and
   * recoveries after a crash included (0 before the first). It keeps growing across
   * `executions.retry`. Not bounded by anything: a waiting workflow may run hundreds of times.
   */
  runs: number
  /**
   * The attempt it is on: `failures + 1`, what `ctx.attempt` says in its runs. Once it ended
   * `failed` or `timed_out`, the attempt that ended it (`failures`). Resumes and crash
   * recoveries are runs of the same attempt; `maxAttempts` bounds it.
   */
  attempt: number
  /**
   * Failed attempts so far: errors, timeouts, an expired deadline, and the run that used up
   * `maxRecoveries`. A run lost to a crash and recovered is not one. The execution ends when
   * a failure is not retryable or they reach `maxAttempts`.
   */
  failures: number
  maxAttempts: number
  /**
   * Recoveries in a row: runs lost to a crash (the process died, the lease expired) and run
   * again since the execution last made progress. A lost run that had recorded a step, wait
   * or child counts 1 again; a run that ends by itself (completes, parks, fails) resets it
   * to 0. The execution fails with `RECOVERIES_EXHAUSTED` rather than exceed `maxRecoveries`.
   */
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
  /** The top of its tree (its own id for a top-level execution). */
  rootId: string
  deadlineAt: number | null
}

export interface HistoryEvent {
  seq: number
  at: number
  from: ExecutionStatus | null
  to: ExecutionStatus
  /** The run it happened in (`runs` at the time; 0 before the first claim). */
  run: number
  detail: unknown
  /** 'status' for a transition; 'step', 'wait', 'signal', 'child' or 'wakeup' for what happened inside a run. */
  event: string
  /** The step, wait or signal name of a non-status event. */
  name: string | null
}

/**
 * The attempt an execution is on: `failures + 1`, or, once it ended `failed` or `timed_out`
 * (each such end counts a failure), the attempt that ended it.
 */
export function attemptOf(status: ExecutionStatus, failures: number): number {
  return status === 'failed' || status === 'timed_out' ? Math.max(1, failures) : failures + 1
}

/** Replays an execution's history up to `at` onto its current record. */
export function executionAsOf(current: Execution, history: readonly HistoryRow[], at: number): Execution {
  const seen = history.filter((h) => h.at <= at)
  const transitions = seen.filter((h) => h.event === 'status')
  const last = transitions.at(-1)
  if (!last)
    throw new NotFoundError(`execution ${current.id} did not exist yet at ${new Date(at).toISOString()}`, {
      executionId: current.id,
    })
  const status = last.to
  const terminal = isTerminalStatus(status)
  let failures = 0
  let recoveries = 0
  let error: StoredError | null = null
  for (const h of transitions) {
    const detail =
      h.detail === null
        ? null
        : (JSON.parse(h.detail) as { transition?: string; error?: StoredError; recoveries?: number })
    const transition = detail?.transition
    if (transition === 'rerun' || transition === 'continue') {
      // A rerun, and a new generation (continueAsNew), start over with fresh budgets and no error.
      failures = 0
      recoveries = 0
      error = null
      continue
    }
    if (transition === 'recover' && detail?.recoveries !== undefined) {
      // A run lost to a crash: not a failure, and why it was lost is not the execution's error.
      recoveries = detail.recoveries
      continue
    }
    if (detail?.error) error = detail.error
    const ended = h.to === 'failed' || h.to === 'timed_out'
    // Every end as failed or timed_out is a failed attempt (a deadline that expired a queued or
    // waiting execution included); a `recover` without `recoveries` was written before crashes
    // stopped counting as failures.
    if (
      transition === 'retry' ||
      transition === 'recover' ||
      (ended && (h.from === 'running' || transition === 'expire'))
    )
      failures++
    if (transition === 'abandon') recoveries = detail?.recoveries ?? recoveries
    else if (h.from === 'running' && transition !== 'release' && h.to !== 'cancelled') recoveries = 0
  }
  // A final transition without its error in the history (a cancel written before cancels kept
  // it): when nothing changed the status since, the row still holds that moment's error.
  const unchangedSince = history.findLast((h) => h.event === 'status')?.seq === last.seq
  if (terminal && error === null && unchangedSince) error = current.error
  return {
    ...current,
    status,
    runs: Math.max(0, ...seen.map((h) => h.run)),
    attempt: attemptOf(status, failures),
    failures,
    recoveries,
    output: status === 'completed' ? current.output : undefined,
    error: status === 'completed' ? null : error,
    updatedAt: seen.at(-1)!.at,
    startedAt: transitions.find((h) => h.to === 'running')?.at ?? null,
    finishedAt: terminal ? last.at : null,
  }
}

export function toExecution(row: ExecutionRow): Execution {
  return {
    ...executionFields(row),
    input: parsePayload(row.input),
    output: parsePayload(row.output),
    error: row.error === null ? null : (JSON.parse(row.error) as StoredError),
  }
}

/** The fields an execution and its summary share: all but its payloads and its error. */
export function executionFields(row: ExecutionSummaryRow) {
  return {
    id: row.id,
    taskId: row.taskId,
    status: row.status,
    runs: row.runs,
    attempt: attemptOf(row.status, row.failures),
    failures: row.failures,
    maxAttempts: row.maxAttempts,
    recoveries: row.recoveries,
    maxRecoveries: row.maxRecoveries,
    timeoutMs: row.timeoutMs,
    priority: row.priority,
    idempotencyKey: row.idempotencyKey,
    runAt: row.runAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    parentId: row.parentId,
    rootId: row.rootId ?? row.id,
    deadlineAt: row.deadlineAt,
  }
}

export function toHistoryEvent(row: HistoryRow): HistoryEvent {
  return {
    seq: row.seq,
    at: row.at,
    from: row.from,
    to: row.to,
    run: row.run,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as unknown),
    event: row.event,
    name: row.name,
  }
}
