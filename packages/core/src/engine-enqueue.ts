/**
 * The engine's enqueue path (`Engine.enqueue`, `enqueueMany`): each request prepared and
 * validated, then written by group commit, so that enqueues arriving together (concurrent HTTP
 * requests) share one transaction.
 */
import type { ChangeFeed } from './change-feed'
import type { Clock } from './clock'
import { PayloadTooLargeError, UnknownTaskError, ValidationError } from './errors'
import { toExecution, type Execution } from './execution-view'
import type { Executor } from './executor'
import { defer } from './defer'
import { prepareExecution, type EnqueueRequest } from './prepare-execution'
import type { TaskRegistry } from './registry'
import type { EnqueueOutcome, NewExecution, Storage } from './storage'
import type { TaskRefresher } from './task-refresh'

export interface EnqueueResult {
  execution: Execution
  /** False when the idempotency key matched an existing execution. */
  created: boolean
}

interface Deps {
  storage: Storage
  registry: TaskRegistry
  clock: Clock
  maxPayloadBytes: number
  executor: Executor
  changes: ChangeFeed
  refresher: TaskRefresher
}

/** Enqueues for one engine; see `Engine.enqueue` and `Engine.enqueueMany`. */
export class Enqueuer {
  private pendingEnqueues: {
    rows: NewExecution[]
    resolve: (o: EnqueueOutcome[]) => void
    reject: (e: unknown) => void
  }[] = []

  constructor(private readonly deps: Deps) {}

  /**
   * One request as a row. An unknown task id may be a function an app deployed since the
   * server loaded its manifest: the task sources are loaded again (throttled), and the request
   * tried once more.
   */
  private async prepare(request: EnqueueRequest, now: number): Promise<NewExecution> {
    const { registry, maxPayloadBytes, refresher } = this.deps
    try {
      return await prepareExecution(registry, request, now, maxPayloadBytes)
    } catch (error) {
      if (!(error instanceof UnknownTaskError) || !(await refresher.refreshForUnknownId(error.taskId)))
        throw error
      return prepareExecution(registry, request, now, maxPayloadBytes)
    }
  }

  async enqueueRequests(
    requests: readonly EnqueueRequest[],
    nameRequests: boolean,
  ): Promise<EnqueueResult[]> {
    const now = this.deps.clock.now()
    const rows: NewExecution[] = []
    for (const [index, request] of requests.entries()) {
      try {
        rows.push(await this.prepare(request, now))
      } catch (error) {
        throw nameRequests ? atRequest(error, index) : error
      }
    }
    const outcomes = await this.deps.executor.wakeAfter(this.writeEnqueues(rows))
    const observer = this.deps.executor.observer
    const results = outcomes.map((outcome) => {
      observer?.enqueued?.(outcome.row, outcome.created)
      if (outcome.created) {
        this.deps.changes.emit({
          id: outcome.row.id,
          taskId: outcome.row.taskId,
          status: 'queued',
          run: 0,
          at: now,
        })
      }
      return { execution: toExecution(outcome.row), created: outcome.created }
    })
    // A created execution due later needs only the due timer, armed here without a storage
    // call: a claim and a nextDueAt read for it would find nothing to do; so does a debounced
    // enqueue that collapsed into a queued execution (its start only moved later). One due
    // now, or an idempotency key that matched an existing execution, pumps the claim loop.
    let pump = false
    let dueLater = Infinity
    for (const { row, created } of outcomes) {
      if ((!created && row.debounceKey === null) || row.runAt <= now) pump = true
      else dueLater = Math.min(dueLater, row.runAt)
    }
    if (pump) this.deps.executor.wake()
    if (dueLater !== Infinity) this.deps.executor.wakeAt(dueLater)
    return results
  }

  /**
   * Group commit: enqueues that arrive in the same event-loop turn (concurrent HTTP
   * requests) are written in one transaction. If that transaction fails, each caller's rows
   * are retried alone, so one caller's failure is never another's.
   */
  private writeEnqueues(rows: NewExecution[]): Promise<EnqueueOutcome[]> {
    return new Promise((resolve, reject) => {
      this.pendingEnqueues.push({ rows, resolve, reject })
      if (this.pendingEnqueues.length > 1) return
      defer(() => void this.flushEnqueues())
    })
  }

  private async flushEnqueues(): Promise<void> {
    const { storage, clock } = this.deps
    const batch = this.pendingEnqueues
    this.pendingEnqueues = []
    try {
      const outcomes = await storage.enqueue(
        batch.flatMap((b) => b.rows),
        clock.now(),
      )
      let offset = 0
      for (const b of batch) {
        b.resolve(outcomes.slice(offset, (offset += b.rows.length)))
      }
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error)
      for (const b of batch) storage.enqueue(b.rows, clock.now()).then(b.resolve, b.reject)
    }
  }
}

/** The error of request `index` of a batch, naming it (see `enqueueMany`). */
function atRequest(error: unknown, index: number): unknown {
  if (error instanceof ValidationError) {
    return new ValidationError(
      `request ${index}: ${error.message}`,
      error.issues.map((issue) => ({ ...issue, path: [index, ...issue.path] })),
    )
  }
  if (error instanceof PayloadTooLargeError)
    return new PayloadTooLargeError(`${index}.${error.field}`, error.sizeBytes, error.limitBytes)
  if (error instanceof Error) error.message = `request ${index}: ${error.message}`
  return error
}
