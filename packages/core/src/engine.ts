import { ChangeFeed } from './change-feed'
import { systemClock, type Clock } from './clock'
import { NotFoundError, ValidationError } from './errors'
import { Executor, type ExecutorOptions } from './executor'
import {
  executionAsOf,
  toExecution,
  toHistoryEvent,
  type Execution,
  type HistoryEvent,
} from './execution-view'
export type { Execution, HistoryEvent } from './execution-view'
import type { PublishedEvent, RecordedEvent } from './events'
import { isExecutionId } from './ids'
import type { AnyTask } from './task-types'
import { silentLogger, type Logger } from './logger'
import { DEFAULT_MAX_PAYLOAD_BYTES } from './payload'
import type { EnqueueOptions, EnqueueRequest } from './prepare-execution'
import { TaskRegistry, type TaskMap } from './registry'
import type { StandardSchemaV1 } from './schema'
import type { Storage } from './storage'
export type { EnqueueOptions, EnqueueRequest } from './prepare-execution'
import { Enqueuer, type EnqueueResult } from './engine-enqueue'
export type { EnqueueResult } from './engine-enqueue'
import { EventPublisher } from './engine-events'
import { waitUntilEnded } from './engine-wait'
import { cancelExecution, eachOnItsOwn, retryExecution } from './engine-cancel-retry'
import { completeWakeup, sendSignal } from './engine-signals'
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
import { Retention, type PurgeReport, type RetentionOptions } from './retention'
import { TaskRefresher, type TaskRefreshResult } from './task-refresh'
import { setTaskPaused, type TaskQueueState } from './engine-task-queues'

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
  /** What the parts of the engine in engine-*.ts are given. */
  private readonly parts: {
    storage: Storage
    registry: TaskRegistry
    clock: Clock
    maxPayloadBytes: number
    executor: Executor
    changes: ChangeFeed
  }
  private readonly enqueuer: Enqueuer
  private readonly refresher: TaskRefresher
  private readonly publisher: EventPublisher

  constructor(options: EngineOptions) {
    this.storage = options.storage
    this.registry = options.tasks instanceof TaskRegistry ? options.tasks : new TaskRegistry(options.tasks)
    this.clock = options.clock ?? systemClock
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES
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
    this.parts = {
      storage: this.storage,
      registry: this.registry,
      clock: this.clock,
      maxPayloadBytes: this.maxPayloadBytes,
      executor: this.executor,
      changes: this.changes,
    }
    this.refresher = new TaskRefresher({
      registry: this.registry,
      clock: this.clock,
      logger: options.logger ?? silentLogger,
      onAdded: () => this.executor.wake(),
    })
    this.enqueuer = new Enqueuer({ ...this.parts, refresher: this.refresher })
    this.publisher = new EventPublisher(this.parts, options.events)
  }

  /**
   * Publishes an event: validates it against the events schema, records it, and enqueues one
   * execution (input: the event) of every task declared with `on: <its type>`, all in one
   * transaction. An event no task listens to is recorded all the same. With `id`, publishing
   * the same event again is a repeat: nothing new is recorded or started, and the result names
   * the first publish's event and executions; the same id with another event is a
   * `ConflictError`. Throws `ValidationError` (nothing stored) when the event, or a listening
   * task's input schema, rejects it.
   */
  publish(event: unknown, options: { id?: string } = {}): Promise<PublishedEvent> {
    return this.publisher.publish(event, options)
  }

  /** Recorded events, newest first; filter by `type`, page with `cursor`. */
  listEvents(
    query: { type?: string; cursor?: string; limit?: number } = {},
  ): Promise<{ items: RecordedEvent[]; nextCursor: string | null }> {
    return this.publisher.list(query)
  }

  /** Starts the executor (see `Executor.start`), the retention timer and the task sources' refresh timers. */
  start(): void {
    this.executor.start()
    this.retention.start()
    this.refresher.start()
  }

  /**
   * Loads every task source again (the functions web apps host: see `TaskSource`) and
   * registers what they offer now: new ids can be enqueued and are claimed at once, changed
   * schemas and options apply to the next enqueue and the next attempt. Concurrent calls share
   * one refresh. All or nothing: rejects with `TaskSourceError` (nothing registered) when a
   * source cannot be loaded, or (`conflict`) offers an id that is taken. A function an app no
   * longer offers stays registered for the executions it has, but takes no new ones.
   */
  refreshTasks(): Promise<TaskRefreshResult> {
    return this.refresher.refresh()
  }

  /**
   * Drains the executor (see `Executor.stop`) and stops the retention timer (a purge in
   * progress ends after its current batch). Does not close the storage.
   */
  stop(options?: { drainMs?: number }): Promise<void> {
    // The executor stops claiming at once (synchronously); both are awaited before the
    // caller closes the storage.
    const draining = this.executor.stop(options)
    this.refresher.stop()
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
    const [result] = await this.enqueuer.enqueueRequests([{ task, input, options }], false)
    return result!
  }

  /**
   * Enqueues several executions in one transaction: either every request is valid and all
   * are stored, or the first invalid one throws and none is. The error names the request: its
   * message starts `request <index>:`, a `ValidationError`'s issue paths start with the index,
   * a `PayloadTooLargeError`'s field is `<index>.input`.
   */
  enqueueMany(requests: readonly EnqueueRequest[]): Promise<EnqueueResult[]> {
    return this.enqueuer.enqueueRequests(requests, true)
  }

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
  cancel(id: string): Promise<Execution> {
    return cancelExecution(this.parts, id)
  }

  /**
   * Sends a signal to an execution: kept in its inbox until a `ctx.waitForSignal` takes it,
   * and wakes the execution if it waits. Throws `NotFoundError`, `ConflictError` when the
   * execution already finished, `PayloadTooLargeError` above the payload limit.
   */
  signal(executionId: string, name: string, payload: unknown): Promise<Execution> {
    return sendSignal(this.parts, executionId, name, payload)
  }

  /**
   * Completes the wait registered under `key` by `ctx.waitForWakeup`: with `output`, or with
   * `error` (thrown inside the task with that message and code). Throws `NotFoundError` when
   * no wait has that key, `ConflictError` when it was already woken, timed out, or its
   * execution finished. A timeout counts once it is recorded (when the execution next runs):
   * a wake-up that comes first wins, even a moment after the timeout's due time.
   */
  wakeup(
    key: string,
    result: { output: unknown } | { error: { message: string; code?: string } },
  ): Promise<{ executionId: string }> {
    return completeWakeup(this.parts, key, result)
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
   * Pauses a task's queue (by id or key), for every process on the database: its queued
   * executions stay queued, enqueues are accepted, running attempts finish, and nothing more
   * starts until `resumeTask` (a claim already under way may still start a few). Pausing a paused
   * task keeps its `pausedAt`. Throws `UnknownTaskError`.
   */
  pauseTask(idOrKey: string): Promise<TaskQueueState> {
    return setTaskPaused(this.parts, idOrKey, true)
  }

  /** Resumes a paused task's queue: its due executions are claimed at once, on every process. Throws `UnknownTaskError`. */
  resumeTask(idOrKey: string): Promise<TaskQueueState> {
    return setTaskPaused(this.parts, idOrKey, false)
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
    return eachOnItsOwn(ids, (id) => this.cancel(id))
  }

  /** Retries each execution on its own, in order (see `retry`); results as `cancelMany`. */
  retryMany(ids: readonly string[]): Promise<BulkResult[]> {
    return eachOnItsOwn(ids, (id) => this.retry(id))
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
  retry(id: string): Promise<Execution> {
    return retryExecution(this.parts, id)
  }

  /**
   * Resolves with the execution once it is terminal, or with its current state when
   * `timeoutMs` passes or `signal` aborts first (check `status`). Throws `NotFoundError`.
   * Wakes on this process's own changes, and on `wakeOn`'s (e.g. the server's change poll,
   * which other replicas' notices drive): called once with a wake function, it returns its
   * unsubscribe. `pollMs` re-reads storage regardless, for changes made by other processes.
   * @default pollMs 1000
   */
  waitFor(
    id: string,
    options: {
      timeoutMs: number
      signal?: AbortSignal
      pollMs?: number
      wakeOn?: (wake: () => void) => () => void
    },
  ): Promise<Execution> {
    return waitUntilEnded(
      { changes: this.changes, clock: this.clock, get: (id) => this.get(id) },
      id,
      options,
    )
  }
}
