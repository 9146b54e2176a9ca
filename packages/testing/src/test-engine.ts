import {
  Engine,
  isTerminalStatus,
  type AnyTask,
  type EngineOptions,
  type EnqueueOptions,
  type EnqueueResult,
  type Execution,
  type ExecutionRow,
  type ExecutionSummary,
  type HistoryEvent,
  type HistoryPageQuery,
  type Page,
  type InputOf,
  type ListExecutionsQuery,
  type Logger,
  type ManualClock,
  type PurgeReport,
  type RetentionMs,
  type Storage,
} from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'
import { toStepRecords, type StepRecord } from './step-records'
import { WatchedClock } from './watched-clock'

/**
 * Terminology.
 * - tick: one claim/run/settle pass of the engine's executor (`Executor.tick`): it claims what
 *   is due now, runs those attempts to their end (a finish, a failure or a park on a wait) and
 *   writes their results. The engine is never started: nothing runs between ticks.
 * - due time: the earliest moment something becomes claimable (a retry's back-off ends, a
 *   sleep ends, a signal wait times out, a deadline passes), from `Storage.nextDueAt`.
 * - clock time vs real time: the engine reads only the manual clock, which moves when this
 *   API moves it. Real time passes only for what task bodies await themselves.
 */

export interface TestEngineOptions {
  /** The tasks under test, as your tasks module exports them. Children must be in it too. */
  tasks: EngineOptions['tasks']
  /** Where the manual clock starts. @default 2030-01-01T00:00:00.000Z */
  start?: Date | number
  /** Attempts one tick may run at once. @default 10 */
  concurrency?: number
  /** Largest input, output, step value or signal payload, in bytes of JSON. @default 1 MiB */
  maxPayloadBytes?: number
  /**
   * Back-off jitter source, in [0, 1): a retry waits `floor(random() * ceiling)` ms.
   * @default () => 0.5, so each retry waits half its ceiling and runs repeat exactly
   */
  random?: () => number
  /** The SQLite database. A file is kept after `close()`, for inspection. @default ':memory:' */
  filename?: string
  /** Receives the engine's logs. @default silent */
  logger?: Logger
  /**
   * Real milliseconds a tick may go without any change to the manual clock's timers before
   * the test engine treats its attempts as hung and moves the clock to the earliest timer,
   * usually an attempt's timeout: a task that never returns then times out (and is retried)
   * as it would in production, instead of blocking the test. An attempt that does real
   * asynchronous work for longer than this is timed out too: raise it for such tasks, or
   * pass `Infinity` to never do it. @default 500
   */
  hungAttemptMs?: number
  /**
   * How long finished execution trees are kept (see `RetentionOptions.retentionMs`); nothing
   * is purged by itself: call {@link TestEngine.purge}. @default 7 days
   */
  retentionMs?: RetentionMs
}

export interface RunUntilSettledOptions {
  /** Ticks before `runUntilSettled` gives up with an error. @default 10_000 */
  maxTicks?: number
  /**
   * The clock is not moved past this time (epoch ms or a Date): when the next due time is
   * later, the execution is returned as it is. Use it to stop at a signal wait before the
   * wait's timeout passes; `until: t.now()` never moves the clock. @default no limit
   */
  until?: Date | number
}

/** Options of {@link TestEngine.run}: enqueue options and {@link RunUntilSettledOptions}. */
export type RunOptions = EnqueueOptions & RunUntilSettledOptions

/** What {@link TestEngine.enqueue} returns: the engine's enqueue result and the new id. */
export interface TestEnqueueResult extends EnqueueResult {
  executionId: string
}

const DEFAULT_MAX_TICKS = 10_000
const DEFAULT_HUNG_ATTEMPT_MS = 500

/**
 * Creates an in-process engine for unit tests of tasks and workflows: SQLite (in memory by
 * default), a manual clock, and an executor that is never started, so work runs only inside
 * {@link TestEngine.runUntilSettled}, {@link TestEngine.run} and {@link TestEngine.tick}.
 * Call `close()` when the test ends.
 *
 * Failure semantics: throws `TypeError` for an invalid task map or option, and whatever
 * opening the SQLite database throws (a file that cannot be created); nothing is left open then.
 *
 * Do not combine it with fake timers (`vi.useFakeTimers()`): the engine schedules its own
 * work with `setImmediate`, and task bodies may use real timers.
 */
export async function createTestEngine(options: TestEngineOptions): Promise<TestEngine> {
  const hungAttemptMs = options.hungAttemptMs ?? DEFAULT_HUNG_ATTEMPT_MS
  if (!(hungAttemptMs > 0)) {
    throw new TypeError(`hungAttemptMs must be a number > 0, got ${String(options.hungAttemptMs)}`)
  }
  const clock = new WatchedClock(options.start ?? Date.UTC(2030, 0, 1))
  if (!Number.isFinite(clock.now()))
    throw new TypeError(`start must be a valid date, got ${String(options.start)}`)
  const storage = openSqliteStorage({ filename: options.filename ?? ':memory:' })
  try {
    return new TestEngine(storage, clock, hungAttemptMs, options)
  } catch (error) {
    await storage.close()
    throw error
  }
}

/**
 * An engine stepped by the test: see {@link createTestEngine}. Every method that reads or
 * writes an execution throws what the engine throws (`NotFoundError` for an unknown id,
 * `ValidationError`, `ConflictError`, …); a task's failure is never thrown, it is the
 * execution's `status` and `error`.
 */
export class TestEngine {
  /** The engine under test, for what this API does not cover. */
  readonly engine: Engine
  /** The storage the engine writes to (SQLite). */
  readonly storage: Storage
  private readonly watchedClock: WatchedClock
  private readonly hungAttemptMs: number
  /** Due times of the timeouts of the attempts the current tick claimed. */
  private attemptTimeouts: number[] = []
  private stepping: string | undefined
  private closed = false

  /** @internal Use {@link createTestEngine}. */
  constructor(storage: Storage, clock: WatchedClock, hungAttemptMs: number, options: TestEngineOptions) {
    this.storage = storage
    this.watchedClock = clock
    this.hungAttemptMs = hungAttemptMs
    this.engine = new Engine({
      storage: observeClaims(storage, (rows, now) => this.noteClaims(rows, now)),
      tasks: options.tasks,
      clock,
      random: options.random ?? (() => 0.5),
      workerId: 'ratchet-testing',
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      ...(options.maxPayloadBytes !== undefined ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
      ...(options.retentionMs !== undefined ? { retentionMs: options.retentionMs } : {}),
    })
  }

  /**
   * Deletes now what is past its retention at the manual clock's time: finished execution
   * trees (with their history, steps, signals and idempotency keys) and published events, as
   * the server's retention timer does. Resolves with what was deleted.
   */
  purge(): Promise<PurgeReport> {
    this.checkOpen('purge')
    return this.engine.purge()
  }

  /** The manual clock the engine reads. Moving it runs nothing by itself. */
  get clock(): ManualClock {
    return this.watchedClock
  }

  /** The manual clock's time, in epoch ms. */
  now(): number {
    return this.watchedClock.now()
  }

  /**
   * Moves the clock forward by `ms` (due work runs at the next tick or `runUntilSettled`).
   * Throws `RangeError` for a negative or non-finite `ms`.
   */
  advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) {
      return Promise.reject(new RangeError(`advance(ms): ms must be a finite number >= 0, got ${String(ms)}`))
    }
    this.watchedClock.advance(ms)
    return Promise.resolve()
  }

  /**
   * Enqueues an execution, as the server would: the input is checked against the task's
   * schema (a `ValidationError` writes nothing). Nothing runs until a tick.
   */
  enqueue<T extends AnyTask>(task: T, input: InputOf<T>, options?: EnqueueOptions): Promise<TestEnqueueResult>
  enqueue(taskId: string, input: unknown, options?: EnqueueOptions): Promise<TestEnqueueResult>
  async enqueue(
    task: AnyTask | string,
    input: unknown,
    options?: EnqueueOptions,
  ): Promise<TestEnqueueResult> {
    this.checkOpen('enqueue')
    const result = await this.engine.enqueue(task, input, options)
    return { ...result, executionId: result.execution.id }
  }

  /**
   * Enqueues an execution and runs it with {@link runUntilSettled}; resolves with the
   * execution at the end (check `status`: a failed task is not thrown). Throws what
   * `enqueue` and `runUntilSettled` throw.
   */
  run<T extends AnyTask>(task: T, input: InputOf<T>, options?: RunOptions): Promise<Execution>
  run(taskId: string, input: unknown, options?: RunOptions): Promise<Execution>
  async run(task: AnyTask | string, input: unknown, options: RunOptions = {}): Promise<Execution> {
    const { maxTicks, until, ...enqueueOptions } = options
    this.checkOpen('run')
    const { execution } = await this.engine.enqueue(task, input, enqueueOptions)
    return this.runUntilSettled(execution.id, {
      ...(maxTicks !== undefined ? { maxTicks } : {}),
      ...(until !== undefined ? { until } : {}),
    })
  }

  /**
   * Ticks until the execution is terminal (`completed`, `failed`, `cancelled`, `timed_out`),
   * and resolves with it. Everything due runs along with it: its children, retries, other
   * executions. When a tick claims nothing, the clock jumps to the next due time (back-offs,
   * sleeps and wait timeouts pass at once); when nothing is due at all (it waits for a signal,
   * or for a child that does) or only after `options.until`, it resolves with the execution as
   * it is, e.g. `waiting`. Its spawned children may still be unfinished when it resolves.
   *
   * Failure semantics: throws `NotFoundError` for an unknown id; `TypeError` for a bad
   * option; an `Error` naming the
   * execution and its status when it is still unsettled after `maxTicks` ticks (a task that
   * never ends: an endless loop, a child that enqueues itself), leaving the clock and the
   * database as they are; an `Error` when another tick or run of this engine is in progress.
   */
  async runUntilSettled(executionId: string, options: RunUntilSettledOptions = {}): Promise<Execution> {
    const maxTicks = options.maxTicks ?? DEFAULT_MAX_TICKS
    if (!Number.isInteger(maxTicks) || maxTicks < 1) {
      throw new TypeError(`maxTicks must be a positive integer, got ${String(options.maxTicks)}`)
    }
    const until =
      options.until === undefined
        ? Infinity
        : typeof options.until === 'number'
          ? options.until
          : options.until.getTime()
    if (Number.isNaN(until)) throw new TypeError(`until must be a valid date, got ${String(options.until)}`)
    this.beginStepping('runUntilSettled')
    try {
      let execution = await this.engine.get(executionId)
      // The clock moves just before the next tick, so a run stopped by maxTicks leaves it where it was.
      let moveClockTo: number | undefined
      for (let ticks = 0; !isTerminalStatus(execution.status);) {
        if (ticks >= maxTicks) {
          throw new Error(
            `runUntilSettled: execution ${executionId} (task "${execution.taskId}") is still ${execution.status} ` +
              `after ${maxTicks} ticks (clock at ${new Date(this.now()).toISOString()}, ${execution.runs} runs, attempt ${execution.attempt}). ` +
              'Does it ever end? Raise maxTicks if it needs more.',
          )
        }
        if (moveClockTo !== undefined) this.watchedClock.set(moveClockTo)
        moveClockTo = undefined
        const claimed = await this.tickOnce()
        ticks++
        execution = await this.engine.get(executionId)
        if (claimed > 0 || isTerminalStatus(execution.status)) continue
        const next = await this.storage.nextDueAt(this.engine.registry.ids())
        if (next === null || next > until) break
        if (next > this.now()) moveClockTo = next
      }
      return execution
    } finally {
      this.stepping = undefined
    }
  }

  /**
   * One pass of the executor: claims what is due now (at most `concurrency`), runs those
   * attempts until each finishes, fails or parks, and writes their results. The clock moves
   * only for an attempt that waits on it (a step's retry back-off, or a hung attempt's timeout:
   * see `hungAttemptMs`). Resolves with how many executions it claimed. Throws an `Error` when
   * another tick or run of this engine is in progress.
   */
  async tick(): Promise<{ claimed: number }> {
    this.beginStepping('tick')
    try {
      return { claimed: await this.tickOnce() }
    } finally {
      this.stepping = undefined
    }
  }

  /**
   * Sends a signal to an execution (kept in its inbox until a `ctx.waitForSignal` takes it)
   * and makes a waiting execution due; run it with `runUntilSettled`. Throws `NotFoundError`,
   * `ConflictError` when the execution already ended, `PayloadTooLargeError`.
   */
  signal(executionId: string, name: string, payload?: unknown): Promise<Execution> {
    return this.ifOpen('signal', () => this.engine.signal(executionId, name, payload ?? null))
  }

  /**
   * Completes the wait registered under `key` by `ctx.waitForWakeup`, as
   * `executions.wakeup` does: with `{ output }` (the wait resolves with it), or with
   * `{ error: { message, code? } }` (the wait throws a non-retryable `WakeupError` with that
   * message and code). The waiting execution becomes due; run it with `runUntilSettled`.
   * Resolves with the id of the execution that waited.
   *
   * Failure semantics: throws `NotFoundError` when no wait has that key (including one whose
   * run has not reached the wait yet); `ConflictError` when the wait was already woken or
   * timed out, or its execution ended (completed, failed, cancelled, timed out); then nothing
   * is written. `PayloadTooLargeError` for an output above the payload limit.
   */
  wakeup(
    key: string,
    result: { output: unknown } | { error: { message: string; code?: string } },
  ): Promise<{ executionId: string }> {
    return this.ifOpen('wakeup', () => this.engine.wakeup(key, result))
  }

  /**
   * Cancels an execution and its whole subtree. Cancelling a cancelled execution returns it;
   * throws `NotFoundError`, and `ConflictError` for one that already completed or failed.
   */
  cancel(executionId: string): Promise<Execution> {
    return this.ifOpen('cancel', () => this.engine.cancel(executionId))
  }

  /** The execution now. Throws `NotFoundError`. */
  get(executionId: string): Promise<Execution> {
    return this.ifOpen('get', () => this.engine.get(executionId))
  }

  /**
   * A page of the execution's history, oldest first: status changes, and the steps, waits,
   * signals and children of its runs (see `Engine.history`: 100 per page by default; pass
   * `nextCursor` back as `cursor`). Throws `NotFoundError`, `ValidationError`.
   */
  history(executionId: string, query?: HistoryPageQuery): Promise<Page<HistoryEvent>> {
    return this.ifOpen('history', () => this.engine.history(executionId, query))
  }

  /**
   * Summaries of executions (no `input` or `output`; `get` has them), newest first (see
   * `Engine.list`). Throws `ValidationError` for a bad limit or cursor.
   */
  list(query?: ListExecutionsQuery): Promise<Page<ExecutionSummary>> {
    return this.ifOpen('list', () => this.engine.list(query))
  }

  /**
   * The execution's durable record, in the order its run asked for steps and waits, with
   * values and errors parsed from JSON (see {@link StepRecord}). Throws `NotFoundError`.
   */
  async steps(executionId: string): Promise<StepRecord[]> {
    this.checkOpen('steps')
    await this.engine.get(executionId)
    const state = await this.storage.loadRunState(executionId)
    return toStepRecords(state.steps, state.children, this.now())
  }

  /**
   * Stops the engine and closes the database (an in-memory one is gone). Await runs first:
   * an attempt still running is aborted. Calling it again does nothing; any other method
   * throws afterwards.
   */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const stopping = this.engine.stop({ drainMs: 0 })
    this.watchedClock.advance(0) // fires the drain's deadline at once
    await stopping
    await this.storage.close()
  }

  // ── stepping ──────────────────────────────────────────────────────────────────────────

  private checkOpen(method: string): void {
    if (this.closed) throw closedError(method)
  }

  /** Calls `fn` unless the engine is closed: rejects, never throws, either way. */
  private ifOpen<T>(method: string, fn: () => Promise<T>): Promise<T> {
    return this.closed ? Promise.reject(closedError(method)) : fn()
  }

  private beginStepping(method: string): void {
    this.checkOpen(method)
    if (this.stepping !== undefined) {
      throw new Error(
        `${method}(): ${this.stepping}() is still in progress on this test engine; await it first`,
      )
    }
    this.stepping = method
  }

  /** From the claim: when each claimed attempt's timeout timer will be due (as the executor sets it). */
  private noteClaims(rows: readonly ExecutionRow[], now: number): void {
    for (const row of rows) {
      const deadlineLeft = row.deadlineAt === null ? Infinity : row.deadlineAt - now
      this.attemptTimeouts.push(now + Math.max(0, Math.min(row.timeoutMs, deadlineLeft)))
    }
  }

  /**
   * Runs one executor tick and moves the clock for attempts that wait on it meanwhile: at
   * once to a timer that is not an attempt's timeout (a step's retry back-off), and to any
   * timer once the tick has gone `hungAttemptMs` of real time without a timer change.
   */
  private async tickOnce(): Promise<number> {
    const clock = this.watchedClock
    this.attemptTimeouts = []
    let finished = false
    const ticking = this.engine.executor.tick()
    const settled = ticking.then(
      () => void (finished = true),
      () => void (finished = true),
    )
    let changed: () => void = () => {}
    clock.onChange = () => changed()
    try {
      for (;;) {
        await nextTurn() // timers set in this turn (several steps in ctx.all) are all seen
        if (finished) break
        const next = clock.nextTimerAt()
        if (next !== undefined && !this.attemptTimeouts.includes(next)) {
          clock.set(next)
          continue
        }
        const event = await new Promise<'changed' | 'stalled' | 'settled'>((resolve) => {
          const timer = Number.isFinite(this.hungAttemptMs)
            ? setTimeout(() => resolve('stalled'), this.hungAttemptMs)
            : undefined
          void settled.then(() => {
            clearTimeout(timer)
            resolve('settled')
          })
          changed = () => {
            clearTimeout(timer)
            resolve('changed')
          }
        })
        changed = () => {}
        const due = event === 'stalled' ? clock.nextTimerAt() : undefined
        if (due !== undefined) clock.set(due)
      }
    } finally {
      clock.onChange = undefined
    }
    return (await ticking).claimed
  }
}

const closedError = (method: string) => new Error(`${method}(): this test engine is closed`)

/** Lets the callbacks of the current event-loop turn (the engine's deferred work) run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** The same storage, telling `onClaim` about every claim before the executor starts the attempts. */
function observeClaims(
  storage: Storage,
  onClaim: (rows: readonly ExecutionRow[], now: number) => void,
): Storage {
  return new Proxy(storage, {
    get(target, key) {
      if (key === 'claim') {
        return async (...args: Parameters<Storage['claim']>) => {
          const outcome = await target.claim(...args)
          onClaim(outcome.claimed, args[0].now)
          return outcome
        }
      }
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}
