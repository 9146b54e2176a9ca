/**
 * The engine's read side for dashboards and command lines: execution summaries, paginated
 * history and records, task statistics, throughput and the change feed, as the engine
 * reports them (times in epoch ms), built from the Storage port's rows.
 */
import { ValidationError, type StoredError } from './errors'
import { executionFields, type Execution } from './execution-view'
import { parsePayload } from './payload'
import { EXECUTION_STATUSES, type ExecutionStatus } from './state-machine'
import type { StepKind, StepStatus } from './durable-record'
import type { ChangeRow, ExecutionSummaryRow, StepRow, ThroughputRow } from './storage'

/** What a list shows of an execution's error. */
export interface ErrorSummary {
  name: string
  message: string
  code?: string
}

/** An execution without its payloads, its error reduced: what `Engine.list` returns. */
export type ExecutionSummary = Omit<Execution, 'input' | 'output' | 'error'> & { error: ErrorSummary | null }

/** One entry of an execution's durable record. Times in ms. */
export interface ExecutionStep {
  position: number
  name: string
  kind: StepKind
  status: StepStatus
  /** The step's value, the signal's payload, the child's output: parsed JSON, null if none. */
  value: unknown
  error: StoredError | null
  wakeAt: number | null
  childId: string | null
  signalName: string | null
  wakeupKey: string | null
  createdAt: number
  completedAt: number | null
}

/** Per task: executions by status and its due queue. */
export interface TaskStats {
  taskId: string
  counts: Record<ExecutionStatus, number>
  /** Queued executions due now. */
  queueDepth: number
  /** The earliest `runAt` of those (ms), or null. */
  oldestQueuedAt: number | null
  /** Since when its queue is paused (`Engine.pauseTask`), or null. */
  pausedAt: number | null
}

export interface ThroughputBucket {
  /** Start of the bucket (ms). */
  at: number
  completed: number
  failed: number
  timed_out: number
  cancelled: number
  started: number
}

/** A status change of any execution, as the change feed reports it. */
export type ExecutionChangeEvent = ChangeRow

/** A page and the cursor of the next one (null when there is none yet). */
export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

/** One id's outcome in `cancelMany` / `retryMany`. */
export interface BulkResult {
  id: string
  ok: boolean
  /** Its status after the call, when ok. */
  status?: ExecutionStatus
  /** Why not: `NOT_FOUND` or `CONFLICT`. */
  error?: { code: string; message: string }
}

export function toExecutionSummary(row: ExecutionSummaryRow): ExecutionSummary {
  return { ...executionFields(row), error: row.error === null ? null : toErrorSummary(row.error) }
}

/** An execution as `list` shows it: without its payloads, its error reduced to name, message and code. */
export function summarizeExecution(execution: Execution): ExecutionSummary {
  const { input: _input, output: _output, error, ...fields } = execution
  return { ...fields, error: error === null ? null : errorSummaryOf(error) }
}

function toErrorSummary(json: string): ErrorSummary {
  return errorSummaryOf(JSON.parse(json) as { name?: unknown; message?: unknown; code?: unknown })
}

function errorSummaryOf(parsed: { name?: unknown; message?: unknown; code?: unknown }): ErrorSummary {
  return {
    name: typeof parsed.name === 'string' ? parsed.name : 'Error',
    message: typeof parsed.message === 'string' ? parsed.message : '',
    ...(typeof parsed.code === 'string' ? { code: parsed.code } : {}),
  }
}

export function toExecutionStep(row: StepRow): ExecutionStep {
  return {
    position: row.position,
    name: row.name,
    kind: row.kind,
    status: row.status,
    value: row.value === null ? null : parsePayload(row.value),
    error: row.error === null ? null : (JSON.parse(row.error) as StoredError),
    wakeAt: row.wakeAt,
    childId: row.childId,
    signalName: row.signalName,
    wakeupKey: row.wakeupKey,
    createdAt: row.createdAt,
    completedAt: row.completedAt,
  }
}

/** Zero counts for every status. */
export function emptyCounts(): Record<ExecutionStatus, number> {
  return Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<ExecutionStatus, number>
}

/** Every bucket of `[from, to)`, the empty ones as zeros. */
export function fillBuckets(
  rows: readonly ThroughputRow[],
  from: number,
  bucketMs: number,
  buckets: number,
): ThroughputBucket[] {
  const items: ThroughputBucket[] = Array.from({ length: buckets }, (_, i) => ({
    at: from + i * bucketMs,
    completed: 0,
    failed: 0,
    timed_out: 0,
    cancelled: 0,
    started: 0,
  }))
  for (const row of rows) {
    const item = items[row.bucket]
    if (!item) continue
    item.completed += row.completed
    item.failed += row.failed
    item.timed_out += row.timedOut
    item.cancelled += row.cancelled
    item.started += row.started
  }
  return items
}

/** A page limit, validated: an integer from 1 to `max`, `fallback` when absent. */
export function pageLimit(limit: number | undefined, fallback: number, max: number): number {
  const value = limit ?? fallback
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new ValidationError(`limit must be an integer from 1 to ${max}, got ${String(value)}`, [
      { path: ['limit'], message: `expected an integer from 1 to ${max}` },
    ])
  return value
}

/** A numeric cursor (a seq or a position) given back by a page, validated. */
export function numericCursor(cursor: string | undefined, what: string): number | undefined {
  if (cursor === undefined) return undefined
  const value = /^\d{1,15}$/.test(cursor) ? Number(cursor) : Number.NaN
  if (!Number.isSafeInteger(value))
    throw new ValidationError(`cursor is not a cursor returned by ${what}`, [
      { path: ['cursor'], message: 'invalid cursor' },
    ])
  return value
}

/** A time given as a Date or ms, validated; `field` names it in the error. */
export function timeArg(value: Date | number, field: string): number {
  const ms = typeof value === 'number' ? value : value.getTime()
  if (!Number.isFinite(ms))
    throw new ValidationError(`${field} is not a valid date`, [
      { path: [field], message: 'expected a valid date' },
    ])
  return ms
}
