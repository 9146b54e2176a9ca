import type { Logger } from './logger'
import type { RetentionMs } from './retention'
import type { RetryPolicy, RetryPolicyInput } from './retry-policy'
import type { StandardSchemaV1 } from './schema'

/*
 * The types a task and its run context share: what `run` receives (`TaskContext` and the
 * options of its calls) and what a registered task is (`Task`). One module for both, as each
 * names the other; `task.ts` (defining tasks) and `run-context.ts` (implementing the context)
 * import them from here, and neither imports the other.
 */

/** Options of a child execution started by `ctx.child` or `ctx.spawn`. */
export interface ChildOptions {
  /** @default the child task's priority */
  priority?: number
  /** Time limit of each run. @default the child task's timeoutMs */
  timeoutMs?: number
  /** @default the child task's retry.maxAttempts */
  maxAttempts?: number
  /** @default the child task's maxRecoveries */
  maxRecoveries?: number
  /** Do not start before this many ms from now. @default 0 */
  delayMs?: number
  /** Bound on the child's whole life. @default the child task's deadlineMs, if any */
  deadlineMs?: number
}

/** The input and output types of a task, for typed children. */
export type InputOf<T> = T extends { readonly '~types'?: { input: infer I } } ? I : unknown
export type OutputOf<T> = T extends { readonly '~types'?: { output: infer O } } ? O : unknown

/**
 * What a task's `run` receives besides its input.
 *
 * Durable functions: `run` is called again from the top after a retry, a crash or a wait.
 * Every `step` and wait returns its recorded result instead of running again; code between
 * them re-runs, so keep side effects inside steps. Names must be unique within an execution
 * and asked for in the same order on every run, or the execution fails with a
 * non-deterministic replay error. `finally` blocks do not run when an execution parks on a wait.
 */
export interface TaskContext {
  readonly executionId: string
  readonly taskId: string
  /**
   * Which attempt this run belongs to, 1-based: failed attempts so far + 1. Resumes after a
   * wait and recoveries after a crash are runs of the same attempt; only a failure (a throw,
   * a timeout) starts the next one. `maxAttempts` bounds it.
   */
  readonly attempt: number
  readonly maxAttempts: number
  /** The parent execution, for a child. */
  readonly parentId: string | null
  /** The top of this execution's tree (its own id at the top). */
  readonly rootId: string
  /**
   * Aborts when the run ends before all of its code did: on timeout, cancellation, shutdown,
   * a park (the run is dropped) and a failure (another branch of the run threw); its `reason`
   * is a `TimeoutError`, `CancelledError`, `ShutdownError`, `SuspendedError` or the error the
   * run failed with. Pass it to `fetch` and RPC calls. Code that ignores it keeps running, but
   * its result is discarded: the run is already settled.
   */
  readonly signal: AbortSignal
  /** A logger bound to `executionId`, `taskId` and `attempt`. */
  readonly logger: Logger
  /** Fresh starts of this execution's body: 0, then one more per `continueAsNew`. */
  readonly generation: number
  /**
   * Ends this run and starts the execution again from the top with `input` and a fresh record:
   * the next generation, same execution id (handles, watches and `wait` keep following it). Its
   * steps, consumed signals and history are deleted (one `continue` history row stays), failures
   * and recoveries restart at 0, and the unfinished children it awaited (`ctx.child`) are
   * cancelled; spawned children and unconsumed signals stay. `input` is checked against the
   * task's input schema: a bad one fails the execution with a `ValidationError`
   * (`INVALID_CONTINUE_INPUT`). Use it as `return ctx.continueAsNew(next)`: it never resolves,
   * and once called the run's result is this, whatever the code does next.
   */
  continueAsNew(input: unknown): Promise<never>
  /**
   * Safe deploys: whether this execution takes the new code path of change `changeId`.
   * Resolves `true` for executions that reach this point under the new code (recorded as a step
   * named `patched:<changeId>`, so every replay answers the same), and `false` for executions
   * that recorded another call here under the old code, which keep replaying the old path:
   *
   * ```ts
   * if (await ctx.patched('charge-before-reserve')) { await ctx.step('charge', ...); await ctx.step('reserve', ...) }
   * else { await ctx.step('reserve', ...); await ctx.step('charge', ...) }
   * ```
   *
   * Await it before the next step or wait (a call made while it decides fails the run). Keep the
   * call until every execution that recorded the marker has finished. Failure semantics: a
   * change id whose marker would be an invalid step name (1 to 200 characters with the prefix)
   * rejects with a `TypeError`; a reused change id is a `DuplicateStepError`.
   */
  patched(changeId: string): Promise<boolean>
  /**
   * Runs `fn` once per execution and records its (JSON) value, or its final error; later
   * runs return the record. One write per step. A retryable error without `options.retry`
   * is not recorded: it fails the attempt and the step runs again in the next one.
   */
  step<T>(name: string, fn: () => Promise<T> | T, options?: StepOptions): Promise<T>
  /** Sleeps durably: the execution waits (holding no slot) and survives restarts. */
  sleep(name: string, ms: number): Promise<void>
  sleepUntil(name: string, until: Date | number): Promise<void>
  /**
   * Resolves with the payload of the first matching signal sent to this execution
   * (`executions.signal`); signals sent earlier wait in its inbox. A timeout throws a
   * `WaitTimeoutError` you can catch.
   */
  waitForSignal<T = unknown>(name: string, options?: WaitForSignalOptions<T>): Promise<T>
  /**
   * Waits until `executions.wakeup({ key, output | error })` is called from outside; resolves
   * with the output or throws the error. Keys are unique across executions.
   */
  waitForWakeup<T = unknown>(name: string, options: { key: string; timeoutMs?: number }): Promise<T>
  /** Starts a child execution once and resolves with its output, or rejects with a `ChildExecutionError`. */
  child<T extends AnyTask>(
    name: string,
    task: T,
    input: InputOf<T>,
    options?: ChildOptions,
  ): Promise<OutputOf<T>>
  child<TOutput = unknown>(
    name: string,
    task: string,
    input: unknown,
    options?: ChildOptions,
  ): Promise<TOutput>
  /** Starts a child execution once, without waiting for it. */
  spawn<T extends AnyTask>(
    name: string,
    task: T | string,
    input: InputOf<T>,
    options?: ChildOptions,
  ): Promise<{ executionId: string }>
  /** `Promise.all` over waits and steps (children start before the execution parks). */
  all<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }>
  /** `Promise.allSettled` over waits and steps: a failed child does not fail the others. */
  allSettled<T extends readonly unknown[]>(
    promises: T,
  ): Promise<{ -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>> }>
}

export interface StepOptions {
  /**
   * Retries of the step body within the attempt, with back-off, before the error is
   * recorded as the step's result. Without it, a retryable error fails the attempt and the
   * step runs again in the next one (it was not recorded); a non-retryable error is recorded.
   */
  retry?: RetryPolicyInput
}

export interface WaitForSignalOptions<T> {
  /** Fail the wait with a `WaitTimeoutError` (catchable) after this long. @default no timeout */
  timeoutMs?: number
  /** Checks the payload; a mismatch fails the wait with a `ValidationError`. */
  schema?: StandardSchemaV1<unknown, T>
  /** Takes the first signal for which this returns true; the others stay in the inbox. */
  where?: (payload: T) => boolean
  /** The signal name to wait for. @default the wait's name */
  signal?: string
}

/**
 * A registered task. `'~types'` carries the input and output types for clients that import
 * the tasks module with `import type` only; it is never set at runtime.
 */
export interface Task<Id extends string = string, TInput = unknown, TParsed = unknown, TOutput = unknown> {
  readonly kind: 'ratchet.task'
  readonly id: Id
  readonly inputSchema: StandardSchemaV1<TInput, TParsed>
  readonly outputSchema: StandardSchemaV1<TOutput, TOutput> | undefined
  readonly description: string | undefined
  readonly timeoutMs: number
  readonly retry: RetryPolicy
  readonly maxRecoveries: number
  readonly priority: number
  readonly deadlineMs: number | undefined
  /** Event types that start it. */
  readonly on: readonly string[]
  /** Its own retention (see `TaskDefinition.retentionMs`); `undefined`: the server's. */
  readonly retentionMs: RetentionMs | undefined
  readonly run: (input: TParsed, ctx: TaskContext) => Promise<TOutput> | TOutput
  /** Enqueues that collapse into one execution (see `TaskDefinition.debounce`); `undefined`: none. */
  readonly debounce: TaskDebounce<TParsed> | undefined
  /** Where the task was loaded from, when it can be loaded again (see `TaskSource`). */
  readonly source: TaskSource | undefined
  readonly '~types'?: { input: TInput; output: TOutput }
}

/** A task's debounce (see `TaskDefinition.debounce`). */
export interface TaskDebounce<TParsed = unknown> {
  /** The key of an enqueue's (parsed) input: enqueues with the same key collapse. */
  readonly key: (input: TParsed) => string
  /** How long the key must be quiet before the execution runs, in ms. */
  readonly periodMs: number
  /** The longest an execution waits after the first enqueue of its burst, in ms; `undefined`: no bound. */
  readonly maxWaitMs: number | undefined
}

/**
 * Where a group of tasks comes from when they are defined outside the server and can change
 * while it runs: the durable functions a web app hosts (`appFunctions` in `@ratchet/orpc`).
 * The engine loads the group again on demand (`Engine.refreshTasks`), when an enqueue names an
 * id it does not know, and every `refreshIntervalMs`, then registers what came back.
 */
export interface TaskSource {
  readonly kind: 'ratchet.taskSource'
  /** Names the source in messages and in refresh results, e.g. the app's URL. */
  readonly name: string
  /** Loads the source's tasks again. Rejects, naming the source, when it cannot; nothing changes then. */
  load(): Promise<readonly AnyTask[]>
  /** How often a running engine loads the source again; `undefined`: only on demand. */
  readonly refreshIntervalMs?: number | undefined
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a registry holds tasks of any input type
export type AnyTask = Task<string, any, any, any>
