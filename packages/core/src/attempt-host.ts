import type { RunningAttempt } from './attempt'
import type { ExecutorContext } from './executor-context'
import type { Logger } from './logger'
import { prepareExecution } from './prepare-execution'
import type { AttemptHost } from './run-context'
import type { ExecutionRow, NewExecution, RunState, SignalRow, StepWrite } from './storage'
import { rethrowOwnRead } from './storage-health'
import type { AnyTask, ChildOptions } from './task-types'

/** @internal What an attempt's host asks of the attempts (attempt-lifecycle.ts) for it. */
export interface AttemptDriver {
  readonly ctx: ExecutorContext
  readonly maxPayloadBytes: number
  /** The engine's back-off jitter source, in [0, 1). */
  random(): number
  /** Queues a step record of the attempt (see `WriteBehind.queueStepWrite`). */
  record(attempt: RunningAttempt, write: StepWrite, behind: boolean): Promise<void>
  park(attempt: RunningAttempt, runAt: number): void
  canSleepInMemory(attempt: RunningAttempt, wakeAt: number): boolean
  sleepInMemory(attempt: RunningAttempt, wakeAt: number): Promise<void>
  /** The run failed with `error` (see `Attempts.onThrow`). */
  onThrow(attempt: RunningAttempt, error: unknown): void
}

/**
 * @internal What a RunContext may ask of the executor for one attempt. A class rather than an
 * object of closures: one is made per attempt, on the hot path.
 */
export class ExecutorHost implements AttemptHost {
  private inbox: Promise<SignalRow[]> | undefined

  constructor(
    private readonly driver: AttemptDriver,
    private readonly attempt: RunningAttempt,
  ) {
    const observer = driver.ctx.observer
    const { info } = attempt
    this.withinStep = observer?.withinStep ? (step, fn) => observer.withinStep!(info, step, fn) : undefined
  }

  get row(): ExecutionRow {
    return this.attempt.row
  }

  get logger(): Logger {
    return this.attempt.logger
  }

  /** Made once per attempt, and only when an observer watches steps. */
  readonly withinStep: AttemptHost['withinStep']

  get signal(): AbortSignal {
    return this.attempt.controller.signal
  }

  get maxPayloadBytes(): number {
    return this.driver.maxPayloadBytes
  }

  now(): number {
    return this.driver.ctx.deps.clock.now()
  }

  /** The first claim of an execution has no record yet: no read. */
  loadState(): Promise<RunState> {
    const { row } = this.attempt
    return (this.attempt.state ??=
      row.runs === 1
        ? Promise.resolve(EMPTY_RUN_STATE)
        : this.driver.ctx.deps.storage.loadRunState(row.id).catch(rethrowOwnRead))
  }

  /** A first attempt skips the record, not the inbox: signals may have come before it started. */
  loadInbox(): Promise<SignalRow[]> {
    const { row } = this.attempt
    if (row.runs !== 1) return this.loadState().then((state) => state.inbox)
    return (this.inbox ??= this.driver.ctx.deps.storage
      .loadRunState(row.id)
      .then((state) => state.inbox, rethrowOwnRead))
  }

  record(write: Omit<StepWrite, 'executionId' | 'run'>, options: { behind?: boolean } = {}): Promise<void> {
    const { row } = this.attempt
    return this.driver.record(
      this.attempt,
      { ...write, executionId: row.id, run: row.runs },
      options.behind ?? false,
    )
  }

  prepareChild(
    task: AnyTask | string,
    input: unknown,
    options: ChildOptions,
    wakesParent: boolean,
  ): Promise<NewExecution> {
    const { row } = this.attempt
    const { registry, clock } = this.driver.ctx.deps
    if (wakesParent) this.attempt.startedChildren = true
    return prepareExecution(registry, { task, input, options }, clock.now(), this.driver.maxPayloadBytes, {
      parentId: row.id,
      rootId: row.rootId ?? row.id,
      wakesParent,
      deadlineAt: row.deadlineAt,
    })
  }

  park(runAt: number): void {
    this.driver.park(this.attempt, runAt)
  }

  canSleepInMemory(wakeAt: number): boolean {
    return this.driver.canSleepInMemory(this.attempt, wakeAt)
  }

  sleepInMemory(wakeAt: number): Promise<void> {
    return this.driver.sleepInMemory(this.attempt, wakeAt)
  }

  poison(error: Error): void {
    this.driver.onThrow(this.attempt, error)
  }

  random(): number {
    return this.driver.random()
  }

  delay(ms: number): Promise<void> {
    const { clock } = this.driver.ctx.deps
    const signal = this.attempt.controller.signal
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error)
      const timer = clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      const onAbort = () => {
        clock.clearTimeout(timer)
        reject(signal.reason as Error)
      }
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
}

const EMPTY_RUN_STATE: RunState = Object.freeze({ steps: [], inbox: [], children: [] })
