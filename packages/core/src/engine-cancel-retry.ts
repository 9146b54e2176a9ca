/**
 * Cancel and retry (`Engine.cancel`, `Engine.retry`), and their bulk forms, which take each
 * execution on its own.
 */
import type { ChangeFeed } from './change-feed'
import type { Clock } from './clock'
import {
  CancelledError,
  ConflictError,
  NotFoundError,
  ParentEndedError,
  ValidationError,
  serializeError,
} from './errors'
import { toExecution, type Execution } from './execution-view'
import type { Executor } from './executor'
import { isExecutionId } from './ids'
import type { BulkResult } from './read-views'
import type { Storage } from './storage'

interface Deps {
  storage: Storage
  clock: Clock
  executor: Executor
  changes: ChangeFeed
}

/** Cancels the execution and its unfinished descendants; see `Engine.cancel`. */
export async function cancelExecution({ storage, clock, executor }: Deps, id: string): Promise<Execution> {
  const now = clock.now()
  const error = new CancelledError()
  const below = new ParentEndedError(`execution ${id}, above it, was cancelled`)
  const outcome = isExecutionId(id)
    ? await executor.wakeAfter(
        storage.cancel(id, now, JSON.stringify(serializeError(error)), JSON.stringify(serializeError(below))),
      )
    : undefined
  if (!outcome) throw new NotFoundError(`no execution with id "${id}"`, { executionId: id })
  const { row, cancelledFrom } = outcome
  if (cancelledFrom === null) {
    if (row.status === 'cancelled') return toExecution(row)
    throw new ConflictError(
      `execution ${id} is already ${row.status}; only queued, running or waiting executions can be cancelled`,
      { executionId: id, status: row.status },
    )
  }
  executor.reportCancelled([{ id, taskId: row.taskId, run: row.runs, cancelledFrom }], error, now)
  executor.reportCancelled(outcome.descendants, below, now)
  return toExecution(row)
}

/** Queues a failed, timed-out or cancelled execution again; see `Engine.retry`. */
export async function retryExecution(
  { storage, clock, executor, changes }: Deps,
  id: string,
): Promise<Execution> {
  const now = clock.now()
  const outcome = isExecutionId(id) ? await executor.wakeAfter(storage.rerun(id, now)) : undefined
  if (!outcome) throw new NotFoundError(`no execution with id "${id}"`, { executionId: id })
  const { row, rerunFrom } = outcome
  if (rerunFrom === null) {
    if (row.deadlineAt !== null && row.deadlineAt <= now && row.status !== 'completed')
      throw new ConflictError(
        `execution ${id} is past its deadline (${new Date(row.deadlineAt).toISOString()}); enqueue a new one instead`,
        { executionId: id, status: row.status },
      )
    throw new ConflictError(
      `execution ${id} is ${row.status}; only failed, timed_out or cancelled executions can be retried`,
      { executionId: id, status: row.status },
    )
  }
  executor.forgetAwaited([id, ...outcome.descendants.map((d) => d.id)])
  changes.emit({ id, taskId: row.taskId, status: 'queued', run: row.runs, at: now })
  for (const d of outcome.descendants)
    changes.emit({ id: d.id, taskId: d.taskId, status: 'queued', run: d.run, at: now })
  executor.wake()
  return toExecution(row)
}

/** Runs `action` on each id in turn; see `Engine.cancelMany`. */
export async function eachOnItsOwn(
  ids: readonly string[],
  action: (id: string) => Promise<Execution>,
): Promise<BulkResult[]> {
  if (ids.length < 1 || ids.length > 100)
    throw new ValidationError('ids must be an array of 1 to 100 execution ids', [
      { path: ['ids'], message: 'expected 1 to 100 ids' },
    ])
  const results: BulkResult[] = []
  for (const id of ids) {
    try {
      results.push({ id, ok: true, status: (await action(id)).status })
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof ConflictError)
        results.push({ id, ok: false, error: { code: error.code, message: error.message } })
      else throw error
    }
  }
  return results
}
