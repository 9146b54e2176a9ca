import type { StepKind } from './durable-record'

/** Which run some code belongs to (see `ExecutorOptions.withinAttempt`). */
export interface AttemptInfo {
  executionId: string
  taskId: string
  /** The attempt (`failures + 1`, what `ctx.attempt` says), for logs. */
  attempt: number
  /** The run (`ExecutionRow.runs` as claimed): the fence of its writes. */
  run: number
}

/**
 * How an attempt ended, as an observer sees it: `completed`, `failed` / `timed_out` (the
 * execution ended), `retried` (a failure with attempts left), `parked` (it waits for a sleep,
 * a signal, a child or a wake-up), `released` (given back at shutdown), `continued`
 * (`ctx.continueAsNew`: the next generation is queued), `aborted` (cancelled,
 * or its lease was lost: nothing was written).
 */
export type AttemptOutcome =
  'completed' | 'failed' | 'timed_out' | 'retried' | 'parked' | 'released' | 'continued' | 'aborted'

/** What `ExecutionObserver.enqueued` is told of an execution. */
export interface EnqueuedExecution {
  id: string
  taskId: string
  parentId?: string | null
}

/** One step or wait of an attempt, as `ExecutionObserver.withinStep` is told. */
export interface StepInfo {
  name: string
  kind: StepKind
  /** Its place in the execution's record (0-based). */
  position: number
}

/**
 * The storage calls whose failures an observer hears of (`storageError`) and whose successes
 * clear them (`storageOk`): the executor's own writes and reads, not API requests' (those fail
 * the request).
 */
export type StorageOperation =
  'claim' | 'housekeep' | 'settle' | 'record_steps' | 'recover_leases' | 'extend_leases'

/**
 * Hooks for metrics and tracing (`EngineOptions.observer`). Every callback is optional and
 * called synchronously on the engine's hot path: keep them cheap, and never throw (an error
 * thrown by a callback propagates into the engine's bookkeeping). Without an observer the
 * engine pays one null check per call site.
 *
 * The core imports no metrics or tracing library: the server adapts these calls to
 * prom-client and OpenTelemetry.
 */
export interface ExecutionObserver {
  /**
   * An enqueue was written (an API enqueue, an event's listener, or a child a run started):
   * `created` false when an idempotency key matched an existing execution. Called in the
   * async context of the API call that enqueued it (not for children).
   */
  enqueued?(execution: EnqueuedExecution, created: boolean): void
  /**
   * An attempt was claimed and is about to run. `queuedForMs`: from when it became due (its
   * `runAt`, i.e. the enqueue or the end of its back-off or wait) to now.
   */
  attemptStarted?(attempt: AttemptInfo, queuedForMs: number): void
  /** An attempt's result was written (or, for `aborted`, the attempt was dropped). */
  attemptEnded?(attempt: AttemptInfo, outcome: AttemptOutcome, durationMs: number): void
  /**
   * Runs the work of a step or wait that this attempt records for the first time (a replayed
   * record is not reported): must call `fn` once, synchronously, and return what it returns.
   * A tracer wraps it in a span made current while `fn` runs.
   */
  withinStep?<T>(attempt: AttemptInfo, step: StepInfo, fn: () => Promise<T>): Promise<T>
  /** A run lost to a crash was recovered (`queued` again, or `failed` when its recovery budget ran out). */
  recovered?(taskId: string, status: 'queued' | 'failed'): void
  /** A storage call of the executor failed (it is retried or left to lease recovery). */
  storageError?(operation: StorageOperation, error: unknown): void
  /** A storage call of the executor succeeded (the storage is reachable again). */
  storageOk?(operation: StorageOperation): void
}
