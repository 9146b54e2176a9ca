import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { FastCounter, FastHistogram } from './fast-metrics'
import type {
  AttemptInfo,
  AttemptOutcome,
  Clock,
  EnqueuedExecution,
  Engine,
  ExecutionObserver,
  Logger,
  StorageOperation,
} from '@ratchet/core'
import { isTerminalStatus, StorageUnavailableError } from '@ratchet/core'

/**
 * Who may scrape `/metrics`: `off` (404), `key` (a Bearer API key, like the API), `public`
 * (anyone who reaches the port).
 */
export type MetricsMode = 'off' | 'key' | 'public'
export const METRICS_MODES: readonly MetricsMode[] = ['off', 'key', 'public']

/** Status codes as label values, made once. */
const STATUS_TEXT: Record<number, string> = Object.fromEntries(
  Array.from({ length: 500 }, (_, i) => [i + 100, String(i + 100)]),
)

/** Seconds: 1 ms to 10 min. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600]

/**
 * The server's Prometheus metrics, in a registry of its own (never prom-client's global one,
 * so several servers in one process do not mix). The engine reports into it through
 * `observer`; queue gauges are read from storage at scrape time (one grouped query).
 */
export class ServerMetrics {
  readonly registry = new Registry()
  private readonly enqueued: FastCounter
  private readonly finished: FastCounter
  private readonly attemptDuration: FastHistogram
  private readonly startDelay: FastHistogram
  private readonly retries: FastCounter
  private readonly recoveries: Counter<'task' | 'result'>
  private readonly storageErrors: Counter<'operation'>
  private readonly httpRequests: FastCounter
  private readonly httpDuration: FastHistogram
  /** Reports the engine's work into these metrics (see `ExecutionObserver`). */
  readonly observer: ExecutionObserver

  constructor(options: {
    engine: () => Engine
    clock: Clock
    logger: Logger
    /** prom-client's default process metrics (CPU, memory, event loop lag, GC). @default true */
    processMetrics?: boolean
  }) {
    const registers = [this.registry]
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry })
    this.enqueued = new FastCounter({
      name: 'ratchet_executions_enqueued_total',
      help: 'Enqueues written, by task; result "created" or "deduplicated" (an idempotency key matched)',
      labelNames: ['task', 'result'],
      registers,
    })
    this.finished = new FastCounter({
      name: 'ratchet_executions_finished_total',
      help: 'Executions that reached a final status in this process, by task and status',
      labelNames: ['task', 'status'],
      registers,
    })
    this.attemptDuration = new FastHistogram({
      name: 'ratchet_attempt_duration_seconds',
      help: 'Attempts from claim to written result, by task and outcome (completed, failed, timed_out, retried, parked, released, continued, aborted)',
      labelNames: ['task', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    })
    this.startDelay = new FastHistogram({
      name: 'ratchet_execution_start_delay_seconds',
      help: "From an execution's due time (its enqueue, or its runAt) to the start of its first attempt, by task",
      labelNames: ['task'],
      buckets: DURATION_BUCKETS,
      registers,
    })
    this.retries = new FastCounter({
      name: 'ratchet_attempt_retries_total',
      help: 'Failed attempts queued again for a retry, by task',
      labelNames: ['task'],
      registers,
    })
    this.recoveries = new Counter({
      name: 'ratchet_lease_recoveries_total',
      help: 'Runs lost to a crash (lease expired) and recovered, by task; result "requeued" or "failed" (recovery budget used up)',
      labelNames: ['task', 'result'],
      registers,
    })
    this.storageErrors = new Counter({
      name: 'ratchet_storage_errors_total',
      help: "Failed storage calls of the executor (and of the metrics' own reads), by operation",
      labelNames: ['operation'],
      registers,
    })
    this.httpRequests = new FastCounter({
      name: 'ratchet_http_requests_total',
      help: 'HTTP requests, by route (the API procedure, e.g. executions.get, or healthz, readyz, metrics, spec, unmatched), method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    })
    this.httpDuration = new FastHistogram({
      name: 'ratchet_http_request_duration_seconds',
      help: 'HTTP request durations until the response ended (a watch stream: until it closed), by route',
      labelNames: ['route'],
      buckets: DURATION_BUCKETS,
      registers,
    })
    const storageErrors = this.storageErrors
    // The queue gauges below come from one read per scrape: the first collected reads.
    let reading: Promise<void> | undefined
    const readQueues = () =>
      (reading ??= (async () => {
        const engine = options.engine()
        queueDepth.reset()
        queued.reset()
        oldestAge.reset()
        paused.reset()
        for (const task of engine.registry.ids()) {
          queueDepth.set({ task }, 0)
          queued.set({ task }, 0)
          oldestAge.set({ task }, 0)
          paused.set({ task }, 0)
        }
        try {
          const now = options.clock.now()
          const [stats, queues] = await Promise.all([
            engine.storage.queueStats(now),
            engine.storage.taskQueues(),
          ])
          for (const q of queues) if (q.pausedAt !== null) paused.set({ task: q.taskId }, 1)
          for (const q of stats) {
            queueDepth.set({ task: q.taskId }, q.due)
            queued.set({ task: q.taskId }, q.queued)
            oldestAge.set(
              { task: q.taskId },
              q.oldestDueAt === null ? 0 : Math.max(0, now - q.oldestDueAt) / 1000,
            )
          }
        } catch (error) {
          storageErrors.inc({ operation: 'queue_stats' })
          // An outage is one quiet line (the executor and /readyz report it); a fault has its stack.
          if (error instanceof StorageUnavailableError)
            options.logger.warn({ reason: error.message }, 'metrics: the database is unreachable')
          else options.logger.warn({ err: error }, 'metrics: reading the queue stats failed')
        }
      })().finally(() => setImmediate(() => (reading = undefined))))
    const queueDepth = new Gauge({
      name: 'ratchet_queue_depth',
      help: 'Queued executions that are due and wait for a worker, by task',
      labelNames: ['task'],
      registers,
      collect: readQueues,
    })
    const queued = new Gauge({
      name: 'ratchet_queued_executions',
      help: 'Queued executions, due or not (delayed, backing off), by task',
      labelNames: ['task'],
      registers,
      collect: readQueues,
    })
    const oldestAge = new Gauge({
      name: 'ratchet_queue_oldest_age_seconds',
      help: 'How long the oldest due queued execution has waited, by task (0 when none waits)',
      labelNames: ['task'],
      registers,
      collect: readQueues,
    })
    const paused = new Gauge({
      name: 'ratchet_task_paused',
      help: 'Whether the task’s queue is paused (1) or runs (0), by task; paused ones start nothing',
      labelNames: ['task'],
      registers,
      collect: readQueues,
    })
    new Gauge({
      name: 'ratchet_running_attempts',
      help: 'Attempts this process is running now',
      registers,
      collect() {
        this.set(options.engine().executor.activeAttempts)
      },
    })
    this.observer = this.makeObserver()
  }

  private makeObserver(): ExecutionObserver {
    const { enqueued, attemptDuration, startDelay, retries, recoveries, storageErrors } = this
    return {
      enqueued(execution: EnqueuedExecution, created: boolean) {
        enqueued.add(execution.taskId, created ? 'created' : 'deduplicated')
      },
      attemptStarted(attempt: AttemptInfo, queuedForMs: number) {
        if (attempt.run === 1) startDelay.record(queuedForMs / 1000, attempt.taskId)
      },
      attemptEnded(attempt: AttemptInfo, outcome: AttemptOutcome, durationMs: number) {
        attemptDuration.record(durationMs / 1000, attempt.taskId, outcome)
        if (outcome === 'retried') retries.add(attempt.taskId)
      },
      recovered(taskId: string, status: 'queued' | 'failed') {
        recoveries.inc({ task: taskId, result: status === 'queued' ? 'requeued' : 'failed' })
      },
      storageError(operation: StorageOperation) {
        storageErrors.inc({ operation })
      },
    }
  }

  /**
   * Counts final statuses from the engine's change feed (every way an execution ends: a
   * result, a cancel, a deadline, a lost recovery budget). Returns the unsubscribe function.
   */
  followChanges(engine: Engine): () => void {
    const finished = this.finished
    return engine.changes.subscribeAll((change) => {
      if (isTerminalStatus(change.status)) finished.add(change.taskId, change.status)
    })
  }

  /** One HTTP request ended. `route` must come from a fixed set (never the raw URL). */
  httpRequest(route: string, method: string, status: number, seconds: number): void {
    this.httpRequests.add(route, method, STATUS_TEXT[status] ?? String(status))
    this.httpDuration.record(seconds, route)
  }

  /** The text exposition (`Content-Type`: `contentType`). */
  scrape(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
