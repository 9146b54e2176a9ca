import { ChangeFeed } from './change-feed'
import { systemClock, type Clock } from './clock'
import {
  CancelledError,
  ConflictError,
  NotFoundError,
  ParentEndedError,
  PayloadTooLargeError,
  ValidationError,
  serializeError,
} from './errors'
import { Executor, type ExecutorOptions } from './executor'
import {
  executionAsOf,
  toExecution,
  toHistoryEvent,
  type Execution,
  type HistoryEvent,
} from './execution-view'
export type { Execution, HistoryEvent } from './execution-view'
import { validateEvent, type PublishedEvent, type RecordedEvent } from './events'
import { isExecutionId, newExecutionId } from './ids'
import type { AnyTask } from './task-types'
import { silentLogger, type Logger } from './logger'
import { MAX_STEP_NAME_LENGTH } from './durable-record'
import { DEFAULT_MAX_PAYLOAD_BYTES, serializePayload } from './payload'
import { prepareExecution, type EnqueueOptions, type EnqueueRequest } from './prepare-execution'
import { TaskRegistry, type TaskMap } from './registry'
import { isTerminalStatus } from './state-machine'
import type { StandardSchemaV1 } from './schema'
import type { EnqueueOutcome, EventRow, NewExecution, Storage } from './storage'
export type { EnqueueOptions, EnqueueRequest } from './prepare-execution'
import {
  changesSince,
  historyPage,
  listExecutions,
  stepsPage,
  taskStats,
  throughput,
  type ChangesSinceQuery,
  type HistoryPageQuery,
  type ListExecutionsQuery,
  type StepsPageQuery,
  type ThroughputQueryInput,
} from './engine-reads'
export type {
  ChangesSinceQuery,
  HistoryPageQuery,
  ListExecutionsQuery,
  StepsPageQuery,
  ThroughputQueryInput,
} from './engine-reads'
import type {
  BulkResult,
  ExecutionChangeEvent,
  ExecutionStep,
  ExecutionSummary,
  Page,
  TaskStats,
  ThroughputBucket,
} from './read-views'
import { defer } from './defer'
import { Retention, type PurgeReport, type RetentionOptions } from './retention'

export interface EngineOptions extends ExecutorOptions, RetentionOptions {
  storage: Storage
  /** The tasks this engine knows: the exported tasks object, or a registry. */
  tasks: TaskMap | TaskRegistry
  /** @default systemClock */
  clock?: Clock
  /** @default silentLogger */
  logger?: Logger
  /**
   * The events this server accepts (`publish`): a Standard Schema, usually a discriminated
   * union on `type`. @default any object with a valid string `type`
   */
  events?: StandardSchemaV1
}

export interface EnqueueResult {
  execution: Execution
  /** False when the idempotency key matched an existing execution. */
  created: boolean
}

/**
 * The engine: the API the server (and `@ratchet/testing`) drive. It validates requests,
 * talks to storage and wakes its executor; it never holds a transaction across an await.
 *
 * Failure semantics: every method either completes its write or throws before writing.
 * Errors thrown are `UnknownTaskError`, `ValidationError`, `PayloadTooLargeError`,
 * `NotFoundError` and `ConflictError`, which the server maps to API errors; anything else
 * is a storage failure.
 */
export class Engine {
  readonly registry: TaskRegistry
  readonly executor: Executor
  readonly changes = new ChangeFeed()
  readonly storage: Storage
  /** Deletes finished trees past their retention (see `RetentionOptions`). */
  readonly retention: Retention
  private readonly clock: Clock
  private readonly maxPayloadBytes: number
  private pendingEnqueues: {
    rows: NewExecution[]
    resolve: (o: EnqueueOutcome[]) => void
    reject: (e: unknown) => void
  }[] = []

  constructor(options: EngineOptions) {
    this.storage = options.storage
    this.registry = options.tasks instanceof TaskRegistry ? options.tasks : new TaskRegistry(options.tasks)
    this.clock = options.clock ?? systemClock
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES
    this.eventsSchema = options.events
    this.retention = new Retention(
      {
        storage: this.storage,
        registry: this.registry,
        clock: this.clock,
        logger: options.logger ?? silentLogger,
      },
      options,
    )
    this.executor = new Executor(
      {
        storage: this.storage,
        registry: this.registry,
        clock: this.clock,
        logger: options.logger ?? silentLogger,
        changes: this.changes,
      },
      options,
    )
  }

  private readonly eventsSchema: StandardSchemaV1 | undefined

  /**
   * Publishes an event: validates it against the events schema, records it, and enqueues one
   * execution (input: the event) of every task declared with `on: <its type>`, all in one
   * transaction. An event no task listens to is recorded all the same. With `id`, publishing
   * the same event again is a repeat: nothing new is recorded or started, and the result names
   * the first publish's event and executions; the same id with another event is a
   * `ConflictError`. Throws `ValidationError` (nothing stored) when the event, or a listening
   * task's input schema, rejects it.
   */
  async publish(event: unknown, options: { id?: string } = {}): Promise<PublishedEvent> {
    const { value, type } = await validateEvent(this.eventsSchema, event)
    if (
      options.id !== undefined &&
      (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > 200)
    )
      throw new ValidationError('id must be a string of 1 to 200 characters', [
        { path: ['id'], message: 'invalid id' },
      ])
    const now = this.clock.now()
    const payload = serializePayload(value, 'event', this.maxPayloadBytes)
    const rows: NewExecution[] = []
    for (const listener of this.registry.listening(type)) {
      try {
        rows.push(
          await prepareExecution(
            this.registry,
            {
              task: listener,
              input: value,
              options: options.id !== undefined ? { idempotencyKey: `event:${options.id}` } : {},
            },
            now,
            this.maxPayloadBytes,
          ),
        )
      } catch (error) {
        if (error instanceof Error) error.message = `task "${listener.id}" (on "${type}"): ${error.message}`
        throw error
      }
    }
    const eventRow: EventRow = {
      id: newExecutionId(now),
      type,
      payload,
      createdAt: now,
      executionIds: JSON.stringify(rows.map((r) => r.id)),
      publishId: options.id ?? null,
    }
    const { event: recorded, outcomes, repeat } = await this.storage.publishEvent(eventRow, rows, now)
    if (repeat) {
      // The same event again: report what the first publish started.
      const ids = JSON.parse(recorded.executionIds) as string[]
      const started = await Promise.all(ids.map((id) => this.storage.get(id)))
      return {
        eventId: recorded.id,
        type: recorded.type,
        executions: started.flatMap((row) =>
          row ? [{ taskId: row.taskId, executionId: row.id, created: false }] : [],
        ),
      }
    }
    for (const outcome of outcomes) {
      this.executor.observer?.enqueued?.(outcome.row, outcome.created)
      if (outcome.created)
        this.changes.emit({
          id: outcome.row.id,
          taskId: outcome.row.taskId,
          status: 'queued',
          run: 0,
          at: now,
        })
    }
    if (outcomes.length > 0) this.executor.wake()
    return {
      eventId: recorded.id,
      type,
      executions: outcomes.map((o) => ({ taskId: o.row.taskId, executionId: o.row.id, created: o.created })),
    }
  }

  /** Recorded events, newest first; filter by `type`, page with `cursor`. */
  async listEvents(
    query: { type?: string; cursor?: string; limit?: number } = {},
  ): Promise<{ items: RecordedEvent[]; nextCursor: string | null }> {
    const limit = query.limit ?? 50
    if (!Number.isInteger(limit) || limit < 1 || limit > 500)
      throw new ValidationError(`limit must be an integer from 1 to 500, got ${String(limit)}`, [
        { path: ['limit'], message: 'expected an integer from 1 to 500' },
      ])
    const rows = await this.storage.listEvents({
      ...(query.type !== undefined ? { type: query.type } : {}),
      ...(query.cursor !== undefined ? { beforeId: query.cursor } : {}),
      limit: limit + 1,
    })
    const page = rows.slice(0, limit)
    return {
      items: page.map((r) => ({
        id: r.id,
        type: r.type,
        event: JSON.parse(r.payload) as unknown,
        createdAt: r.createdAt,
        executionIds: JSON.parse(r.executionIds) as string[],
      })),
      nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
    }
  }

  /** Starts the executor (see `Executor.start`) and the retention timer. */
  start(): void {
    this.executor.start()
    this.retention.start()
  }

  /**
   * Drains the executor (see `Executor.stop`) and stops the retention timer (a purge in
   * progress ends after its current batch). Does not close the storage.
   */
  stop(options?: { drainMs?: number }): Promise<void> {
    // The executor stops claiming at once (synchronously); both are awaited before the
    // caller closes the storage.
    const draining = this.executor.stop(options)
    return Promise.all([this.retention.stop(), draining]).then(() => undefined)
  }

  /**
   * Purges now what is past its retention (what the retention timer does every
   * `purgeIntervalMs`), in batches of `purgeBatchSize` rows. Throws what storage throws.
   */
  purge(): Promise<PurgeReport> {
    return this.retention.purge()
  }

  /**
   * Validates the input against the task's schema and stores a queued execution.
   * Bad input throws `ValidationError` (with the schema's issues) and writes nothing.
   */
  async enqueue(
    task: string | AnyTask,
    input: unknown,
    options: EnqueueOptions = {},
  ): Promise<EnqueueResult> {
    const [result] = await this.enqueueRequests([{ task, input, options }], false)
    return result!
  }

  /**
   * Enqueues several executions in one transaction: either every request is valid and all
   * are stored, or the first invalid one throws and none is. The error names the request: its
   * message starts `request <index>:`, a `ValidationError`'s issue paths start with the index,
   * a `PayloadTooLargeError`'s field is `<index>.input`.
   */
  enqueueMany(requests: readonly EnqueueRequest[]): Promise<EnqueueResult[]> {
    return this.enqueueRequests(requests, true)
  }

  private async enqueueRequests(
    requests: readonly EnqueueRequest[],
    nameRequests: boolean,
  ): Promise<EnqueueResult[]> {
    const now = this.clock.now()
    const rows: NewExecution[] = []
    for (const [index, request] of requests.entries()) {
      try {
        rows.push(await prepareExecution(this.registry, request, now, this.maxPayloadBytes))
      } catch (error) {
        throw nameRequests ? atRequest(error, index) : error
      }
    }
    const outcomes = await this.writeEnqueues(rows)
    const observer = this.executor.observer
    const results = outcomes.map((outcome) => {
      observer?.enqueued?.(outcome.row, outcome.created)
      if (outcome.created) {
        this.changes.emit({
          id: outcome.row.id,
          taskId: outcome.row.taskId,
          status: 'queued',
          run: 0,
          at: now,
        })
      }
      return { execution: toExecution(outcome.row), created: outcome.created }
    })
    this.executor.wake()
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
    const batch = this.pendingEnqueues
    this.pendingEnqueues = []
    try {
      const outcomes = await this.storage.enqueue(
        batch.flatMap((b) => b.rows),
        this.clock.now(),
      )
      let offset = 0
      for (const b of batch) {
        b.resolve(outcomes.slice(offset, (offset += b.rows.length)))
      }
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error)
      for (const b of batch) this.storage.enqueue(b.rows, this.clock.now()).then(b.resolve, b.reject)
    }
  }

  /** Throws `NotFoundError` for an unknown id. */
  /**
   * The execution now, or as it was at `asOf` (rebuilt from its history: status, attempts,
   * failures, times, and the output or last error it had then). Throws `NotFoundError` for
   * an unknown id, or when the execution did not exist yet at `asOf`.
   */
  async get(id: string, options: { asOf?: Date | number } = {}): Promise<Execution> {
    const row = isExecutionId(id) ? await this.storage.get(id) : undefined
    if (!row) throw new NotFoundError(`no execution with id "${id}"`, { executionId: id })
    const current = toExecution(row)
    if (options.asOf === undefined) return current
    const at = typeof options.asOf === 'number' ? options.asOf : options.asOf.getTime()
    if (!Number.isFinite(at)) {
      throw new ValidationError('asOf is not a valid date', [
        { path: ['asOf'], message: 'expected a valid date' },
      ])
    }
    return executionAsOf(current, await this.storage.history(id), at)
  }

  /**
   * Summaries of executions (no `input` or `output`; `get` has them), newest first, `limit`
   * (default 50, at most 500) per page; pass `nextCursor` back as `cursor` for the next page.
   * `rootId` matches the root and everything below it. Throws `ValidationError` naming the
   * field for a bad limit, cursor or time.
   */
  list(query: ListExecutionsQuery = {}): Promise<Page<ExecutionSummary>> {
    return listExecutions(this, query)
  }

  /**
   * Cancels a queued, running or waiting execution. A running attempt in this process sees
   * `ctx.signal` abort with a `CancelledError` at once; its late result changes nothing.
   * Cancelling a cancelled execution returns it unchanged; a completed, failed or timed-out
   * one is a `ConflictError`.
   */
  async cancel(id: string): Promise<Execution> {
    const now = this.clock.now()
    const error = new CancelledError()
    const below = new ParentEndedError(`execution ${id}, above it, was cancelled`)
    const outcome = isExecutionId(id)
      ? await this.storage.cancel(
          id,
          now,
          JSON.stringify(serializeError(error)),
          JSON.stringify(serializeError(below)),
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
    this.executor.reportCancelled([{ id, taskId: row.taskId, run: row.runs, cancelledFrom }], error, now)
    this.executor.reportCancelled(outcome.descendants, below, now)
    return toExecution(row)
  }

  /**
   * Sends a signal to an execution: kept in its inbox until a `ctx.waitForSignal` takes it,
   * and wakes the execution if it waits. Throws `NotFoundError`, `ConflictError` when the
   * execution already finished, `PayloadTooLargeError` above the payload limit.
   */
  async signal(executionId: string, name: string, payload: unknown): Promise<Execution> {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_STEP_NAME_LENGTH) {
      throw new ValidationError(`signal name must be 1 to ${MAX_STEP_NAME_LENGTH} characters`, [
        { path: ['name'], message: `expected a string of 1 to ${MAX_STEP_NAME_LENGTH} characters` },
      ])
    }
    const json = serializePayload(payload, 'signal payload', this.maxPayloadBytes)
    const outcome = isExecutionId(executionId)
      ? await this.storage.signal(executionId, name, json, this.clock.now())
      : ({ result: 'not_found' } as const)
    if (outcome.result === 'not_found')
      throw new NotFoundError(`no execution with id "${executionId}"`, { executionId })
    if (outcome.result === 'finished') {
      throw new ConflictError(
        `execution ${executionId} is already ${outcome.status}; it takes no more signals`,
        { executionId, status: outcome.status },
      )
    }
    this.executor.wake()
    return toExecution(outcome.row)
  }

  /**
   * Completes the wait registered under `key` by `ctx.waitForWakeup`: with `output`, or with
   * `error` (thrown inside the task with that message and code). Throws `NotFoundError` when
   * no wait has that key, `ConflictError` when it was already woken, timed out, or its
   * execution finished. A timeout counts once it is recorded (when the execution next runs):
   * a wake-up that comes first wins, even a moment after the timeout's due time.
   */
  async wakeup(
    key: string,
    result: { output: unknown } | { error: { message: string; code?: string } },
  ): Promise<{ executionId: string }> {
    const stored =
      'error' in result
        ? {
            error: JSON.stringify({
              name: 'WakeupError',
              message: result.error.message,
              ...(result.error.code ? { code: result.error.code } : {}),
              retryable: false,
            }),
          }
        : { value: serializePayload(result.output, 'wakeup output', this.maxPayloadBytes) }
    const outcome = await this.storage.wakeup(key, stored, this.clock.now())
    if (outcome.result === 'not_found')
      throw new NotFoundError(`no wait has the wakeup key "${key}"`, { wakeupKey: key })
    if (outcome.result === 'finished') {
      throw new ConflictError(
        `the wait with wakeup key "${key}" (execution ${outcome.executionId}) was already woken or has ended`,
        { executionId: outcome.executionId },
      )
    }
    this.executor.wake()
    return { executionId: outcome.executionId }
  }

  /**
   * A page of the execution's history (status changes, and steps, waits, signals, children
   * inside runs; with `statusOnly` status changes only), oldest first, `limit` (default 100, at
   * most 1000) per page. `nextCursor` is null when nothing follows yet. Throws
   * `ValidationError` (limit, cursor), `NotFoundError`.
   */
  history(id: string, query: HistoryPageQuery = {}): Promise<Page<HistoryEvent>> {
    return historyPage(this, id, query)
  }

  /**
   * A page of the execution's durable record (steps, sleeps, waits, children), by position,
   * `limit` (default 100, at most 500) per page. Throws `ValidationError`, `NotFoundError`.
   */
  steps(id: string, query: StepsPageQuery = {}): Promise<Page<ExecutionStep>> {
    return stepsPage(this, id, query)
  }

  /**
   * Per task (every registered task, and any other with executions in storage), sorted by
   * id: executions by status, queued ones due now, and the earliest due time among those.
   */
  taskStats(): Promise<TaskStats[]> {
    return taskStats(this, this.clock.now())
  }

  /**
   * Executions ended (by final status, at `finishedAt`) and first started (at `startedAt`) in
   * `[from, to)`, in `buckets` (default 60, at most 500) equal buckets. Throws
   * `ValidationError` for bad times, `to <= from`, or a bad bucket count.
   */
  throughput(query: ThroughputQueryInput): Promise<{ bucketMs: number; items: ThroughputBucket[] }> {
    return throughput(this, query)
  }

  /**
   * Status changes of every execution (or of one task, or one tree) after the cursor `after`
   * (`''`: from the first), in feed order, at most `limit` (default 100, at most 1000). A reader
   * that resumes after the last cursor it saw misses none and sees none twice. Cursors are
   * opaque: compare them for equality only. Throws `ValidationError` for a malformed cursor.
   */
  changesSince(query: ChangesSinceQuery): Promise<ExecutionChangeEvent[]> {
    return changesSince(this, query)
  }

  /**
   * The cursor of the latest change so far (`''` when none): where a change feed "from now"
   * starts, and, compared with an earlier value, whether the database moved.
   */
  changeCursor(): Promise<string> {
    return this.storage.changeCursor()
  }

  /**
   * Cancels each execution on its own, in order (see `cancel`): one that cannot be cancelled
   * does not stop the others. Per id: `ok` with its status, or `ok: false` with `NOT_FOUND`
   * or `CONFLICT`. Other errors (storage failures) are thrown.
   */
  cancelMany(ids: readonly string[]): Promise<BulkResult[]> {
    return this.eachOnItsOwn(ids, (id) => this.cancel(id))
  }

  /** Retries each execution on its own, in order (see `retry`); results as `cancelMany`. */
  retryMany(ids: readonly string[]): Promise<BulkResult[]> {
    return this.eachOnItsOwn(ids, (id) => this.retry(id))
  }

  private async eachOnItsOwn(
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

  /**
   * The execution's status transitions after history `seq` `afterSeq` (all of them without
   * it), oldest first: what a watcher has not seen yet. Throws `NotFoundError`.
   */
  async statusChanges(id: string, afterSeq?: number): Promise<HistoryEvent[]> {
    if (!isExecutionId(id)) throw new NotFoundError(`no execution with id "${id}"`, { executionId: id })
    const rows = await this.storage.history(id, {
      statusOnly: true,
      ...(afterSeq !== undefined ? { afterSeq } : {}),
    })
    if (rows.length === 0 && afterSeq === undefined) await this.get(id) // NotFoundError when unknown
    return rows.map(toHistoryEvent)
  }

  /**
   * Runs a failed, timed-out or cancelled execution again: it is queued now, with fresh
   * failure and recovery budgets (`failures` and `recoveries` 0, so its next run is attempt
   * 1 again; `runs` keeps counting). Recorded steps are not run again, except the recorded
   * failure that ended it (a step or wait runs again; a child is read afresh: retry a failed
   * child first, then its parent). Failures the run caught replay as they were. Descendants its
   * end cancelled (`PARENT_ENDED`) are rerun with it; children that failed on their own are not.
   * Throws `NotFoundError`, or `ConflictError` when the execution is queued, running, waiting
   * or completed, or past its deadline.
   */
  async retry(id: string): Promise<Execution> {
    const now = this.clock.now()
    const outcome = isExecutionId(id) ? await this.storage.rerun(id, now) : undefined
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
    this.executor.forgetAwaited([id, ...outcome.descendants.map((d) => d.id)])
    this.changes.emit({ id, taskId: row.taskId, status: 'queued', run: row.runs, at: now })
    for (const d of outcome.descendants)
      this.changes.emit({ id: d.id, taskId: d.taskId, status: 'queued', run: d.run, at: now })
    this.executor.wake()
    return toExecution(row)
  }

  /**
   * Resolves with the execution once it is terminal, or with its current state when
   * `timeoutMs` passes or `signal` aborts first (check `status`). Throws `NotFoundError`.
   * Wakes on this process's own changes, and on `wakeOn`'s (e.g. the server's change poll,
   * which other replicas' notices drive): called once with a wake function, it returns its
   * unsubscribe. `pollMs` re-reads storage regardless, for changes made by other processes.
   * @default pollMs 1000
   */
  async waitFor(
    id: string,
    options: {
      timeoutMs: number
      signal?: AbortSignal
      pollMs?: number
      wakeOn?: (wake: () => void) => () => void
    },
  ): Promise<Execution> {
    let wake: () => void = () => {}
    // A terminal change that arrives while the row is being read must not be missed.
    let changed = false
    const unsubscribe = this.changes.subscribe(id, (change) => {
      if (!isTerminalStatus(change.status)) return
      changed = true
      wake()
    })
    const unhook = options.wakeOn?.(() => {
      changed = true
      wake()
    })
    const deadline = this.clock.now() + options.timeoutMs
    try {
      for (;;) {
        changed = false
        const execution = await this.get(id)
        const remaining = deadline - this.clock.now()
        if (isTerminalStatus(execution.status) || remaining <= 0 || options.signal?.aborted) return execution
        if (changed) continue
        await new Promise<void>((resolve) => {
          const timer = this.clock.setTimeout(done, Math.min(remaining, options.pollMs ?? 1000))
          const signal = options.signal
          function done() {
            signal?.removeEventListener('abort', onWake)
            resolve()
          }
          const onWake = () => {
            this.clock.clearTimeout(timer)
            done()
          }
          wake = onWake
          signal?.addEventListener('abort', onWake, { once: true })
        })
      }
    } finally {
      unsubscribe()
      unhook?.()
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
