import { newRunningAttempt, type RunningAttempt } from './attempt'
import { ExecutorHost, type AttemptDriver } from './attempt-host'
import { decideAfterFailure } from './attempt-outcome'
import {
  DeadlineExceededError,
  LeaseExpiredError,
  ShutdownError,
  SuspendedError,
  TimeoutError,
  ValidationError,
  serializeError,
} from './errors'
import type { ExecutorContext } from './executor-context'
import { canSleepInMemory, sleepInMemory } from './in-memory-sleep'
import { errorForRetryLog } from './logger'
import type { AttemptInfo } from './observer'
import { serializePayload } from './payload'
import type { BackoffOptions } from './retry-policy'
import { ContinueAsNew, RunContext } from './run-context'
import { describeIssues, validateSchema } from './schema'
import type { Slots } from './slots'
import { isOwnUnavailableRead } from './storage-health'
import type { CancelledExecution, ExecutionRow, Settlement, StepWrite } from './storage'
import type { AnyTask } from './task-types'
import { WriteBehind, type WriteBehindHost } from './write-behind'

/** @internal What the attempts need to know of the executor's options (see `ExecutorOptions`). */
export interface AttemptSettings {
  shortSleepMs: number
  maxPayloadBytes: number
  random: () => number
  /** The longest back-off between retries of writes while the storage is unreachable. */
  pollIntervalMs: number
  withinAttempt: (<T>(attempt: AttemptInfo, fn: () => T) => T) | undefined
}

/**
 * @internal The attempts this process runs, from claim to written result. An attempt is
 * started on a claimed row; its run ends in one of: a return (complete, or continue as new), a
 * throw (retry or end), its timer (timeout or deadline), a park (only durable waits left), or an
 * abort from outside (cancel, lost lease, shutdown). Each end but an abort queues one settlement
 * with the write-behind, marks the attempt finished and frees its slot; once that is written,
 * the attempt is released (forgotten; its `done` settles).
 */
export class Attempts implements WriteBehindHost, AttemptDriver {
  readonly writes: WriteBehind
  readonly maxPayloadBytes: number
  readonly random: () => number
  private readonly inFlight = new Map<string, RunningAttempt>()

  constructor(
    readonly ctx: ExecutorContext,
    private readonly settings: AttemptSettings,
    private readonly slots: Slots,
    /** Something may be claimable, or slots free: run the claim loop soon. */
    private readonly pump: () => void,
    /** Results were written (see `ClaimLoop.slotsFreed`). */
    private readonly slotsFreed: (mayHaveWoken: boolean) => void,
  ) {
    this.writes = new WriteBehind(ctx, this, settings)
    this.maxPayloadBytes = settings.maxPayloadBytes
    this.random = settings.random
  }

  /** Attempts whose result is not written yet (parks still queued included). */
  get size(): number {
    return this.inFlight.size
  }

  values(): IterableIterator<RunningAttempt> {
    return this.inFlight.values()
  }

  get(executionId: string): RunningAttempt | undefined {
    return this.inFlight.get(executionId)
  }

  start(row: ExecutionRow): RunningAttempt {
    const { deps } = this.ctx
    const task = deps.registry.get(row.taskId)
    if (!task) throw new Error(`claimed an execution of unregistered task ${row.taskId}`)
    const stale = this.inFlight.get(row.id)
    // Our own earlier attempt of this execution lost its lease and was recovered: it is stale.
    if (stale) this.abort(row.id, new LeaseExpiredError())

    const attempt = newRunningAttempt(row, task, deps.logger, deps.clock.now())
    const { info, startedAt } = attempt
    this.inFlight.set(row.id, attempt)
    this.ctx.observer?.attemptStarted?.(info, Math.max(0, startedAt - row.runAt))
    this.slots.take(attempt)
    this.armTimer(attempt, startedAt)
    attempt.logger.debug({ maxAttempts: row.maxAttempts, failures: row.failures }, 'attempt started')
    const context = (attempt.context = new RunContext(new ExecutorHost(this, attempt)))
    const run = () => this.runTask(task, row.input, context)
    const { withinAttempt } = this.settings
    const running = withinAttempt ? withinAttempt(info, run) : run()
    running.then(
      (output) => this.onReturn(attempt, output),
      (error: unknown) => this.onThrow(attempt, error),
    )
    return attempt
  }

  /**
   * Aborts the run's `ctx.signal` inside the run's own scope (`withinAttempt`): the abort runs
   * the task's listeners, and what they throw or start belongs to that run. Called from the
   * executor's timers and flushes, which run in the scope of whatever run set them off.
   */
  private abortRun(attempt: RunningAttempt, reason: unknown): void {
    const abort = () => attempt.controller.abort(reason)
    const { withinAttempt } = this.settings
    if (withinAttempt) withinAttempt(attempt.info, abort)
    else abort()
  }

  /**
   * (Re)starts the attempt's time limit at `from`: its timeout, or its deadline if sooner. An
   * in-memory sleep restarts it when it ends, as the next attempt would have after a park.
   */
  private armTimer(attempt: RunningAttempt, from: number): void {
    const { row } = attempt
    const { clock } = this.ctx.deps
    if (attempt.timer) clock.clearTimeout(attempt.timer)
    const deadlineLeft = row.deadlineAt === null ? Infinity : row.deadlineAt - from
    const limit = Math.max(0, Math.min(row.timeoutMs, deadlineLeft))
    attempt.endsAt = from + limit
    attempt.timer = clock.setTimeout(() => this.onTimeout(attempt, deadlineLeft <= row.timeoutMs), limit)
  }

  /** Runs the task body and turns its result into stored JSON; every failure rejects. */
  private async runTask(task: AnyTask, inputJson: string, ctx: RunContext): Promise<string> {
    const output: unknown = await task.run(JSON.parse(inputJson), ctx)
    let value = output
    if (task.outputSchema) {
      const result = await validateSchema(task.outputSchema, output)
      if (!result.ok) {
        throw new ValidationError(
          `task "${task.id}" returned an output that does not match its output schema: ${describeIssues(result.issues)}`,
          result.issues,
          'INVALID_OUTPUT',
        )
      }
      value = result.value
    }
    return serializePayload(value, 'output', this.maxPayloadBytes)
  }

  private onReturn(attempt: RunningAttempt, output: string): void {
    if (attempt.finished) return // timed out or aborted first: the result is discarded
    if (attempt.context?.continuation) return this.continueAsNew(attempt, attempt.context.continuation.input)
    this.finish(attempt)
    this.queueResult(attempt, {
      transition: 'complete',
      id: attempt.row.id,
      run: attempt.row.runs,
      output,
    })
  }

  /**
   * The run failed (its promise rejected, or it broke a rule of replay). Its `ctx.signal`
   * aborts with the error: another branch of the same run (a step beside the one that threw in
   * `ctx.all`) may still be running, and must not go on beside the next attempt.
   */
  onThrow(attempt: RunningAttempt, error: unknown): void {
    if (attempt.finished) return
    if (attempt.context?.continuation) return this.continueAsNew(attempt, attempt.context.continuation.input)
    this.finish(attempt)
    this.abortRun(attempt, error)
    this.settleFailure(attempt, error)
  }

  /**
   * The run called `ctx.continueAsNew(input)`: the input is checked against the task's schema
   * (a bad one fails the execution, not retried), then the execution is queued again as its
   * next generation. Other branches of the run still in flight are aborted.
   */
  private continueAsNew(attempt: RunningAttempt, input: unknown): void {
    this.finish(attempt)
    this.abortRun(attempt, new ContinueAsNew())
    const { task, row } = attempt
    void validateSchema(task.inputSchema, input)
      .then((result) => {
        if (!result.ok)
          throw new ValidationError(
            `continueAsNew: the input does not match the input schema of task "${task.id}": ${describeIssues(result.issues)}`,
            result.issues,
            'INVALID_CONTINUE_INPUT',
          )
        const json = serializePayload(result.value, 'continueAsNew input', this.maxPayloadBytes)
        this.queueResult(attempt, {
          transition: 'continue',
          id: row.id,
          run: row.runs,
          input: json,
        })
      })
      .catch((error: unknown) => this.settleFailure(attempt, error))
  }

  private onTimeout(attempt: RunningAttempt, deadline: boolean): void {
    attempt.timer = undefined
    if (attempt.finished) return
    const { row } = attempt
    if (!deadline && this.ctx.health.unavailable) {
      // The run may only be waiting for records the outage holds back: its time is not up by
      // its own doing. Released (queued again, no attempt used up) once the storage is back.
      const error = new TimeoutError(
        `attempt ${row.failures + 1} of task "${row.taskId}" passed its timeout of ${row.timeoutMs} ms while the storage was unreachable; released`,
      )
      this.finish(attempt)
      this.abortRun(attempt, error)
      attempt.logger.warn(
        { timeoutMs: row.timeoutMs },
        'attempt released: its timeout passed while the storage was unreachable',
      )
      this.queueResult(attempt, {
        transition: 'release',
        id: row.id,
        run: row.runs,
        error: JSON.stringify(serializeError(error)),
      })
      return
    }
    const error = deadline
      ? new DeadlineExceededError(`execution of task "${row.taskId}" ran past its deadline`)
      : new TimeoutError(
          `attempt ${row.failures + 1} of task "${row.taskId}" ran past its timeout of ${row.timeoutMs} ms`,
        )
    this.finish(attempt)
    this.abortRun(attempt, error)
    this.settleFailure(attempt, error)
  }

  canSleepInMemory(attempt: RunningAttempt, wakeAt: number): boolean {
    const now = this.ctx.deps.clock.now()
    return canSleepInMemory(attempt, wakeAt, now, this.settings.shortSleepMs, this.ctx.state === 'running')
  }

  sleepInMemory(attempt: RunningAttempt, wakeAt: number): Promise<void> {
    const { clock } = this.ctx.deps
    return sleepInMemory(attempt, wakeAt, clock, this.slots, () => this.armTimer(attempt, clock.now()))
  }

  /**
   * The run has nothing left in flight but durable waits: it is dropped (the next attempt
   * replays it), and `ctx.signal` aborts with a `SuspendedError` so that code it still runs
   * outside a step (a fetch started between steps) stops instead of running on, unwatched,
   * beside the replay. Its result, if any, is discarded (the attempt is finished).
   */
  park(attempt: RunningAttempt, runAt: number): void {
    if (attempt.finished) return
    this.finish(attempt)
    this.abortRun(attempt, new SuspendedError())
    const wakeAt = attempt.row.deadlineAt === null ? runAt : Math.min(runAt, attempt.row.deadlineAt)
    attempt.logger.debug({ wakeAt }, 'execution parked')
    this.writes.queueSettlement(attempt, {
      transition: 'park',
      id: attempt.row.id,
      run: attempt.row.runs,
      runAt: wakeAt,
    })
    this.slots.release(attempt)
  }

  record(attempt: RunningAttempt, write: StepWrite, behind: boolean): Promise<void> {
    return this.writes.queueStepWrite(attempt, write, behind)
  }

  private settleFailure(attempt: RunningAttempt, error: unknown): void {
    this.queueResult(attempt, this.failureSettlement(attempt, error))
  }

  /**
   * Queues the result of a finished run and frees its slot at once: it runs no code any more,
   * so the next claim overlaps with the write of this result (on PostgreSQL they go over two
   * connections). The claim loop bounds the results not yet written (see `ClaimLoop.freeSlots`).
   */
  private queueResult(attempt: RunningAttempt, settlement: Settlement): void {
    this.writes.queueSettlement(attempt, settlement)
    this.slots.release(attempt)
  }

  /**
   * The settlement of a failed attempt: a retry after back-off, or the end (failed or
   * timed_out). A run that failed because the storage was unreachable for the executor's own
   * read of its record or inbox is released instead: queued again, its attempts not used up by
   * an outage.
   */
  failureSettlement(attempt: RunningAttempt, error: unknown): Settlement {
    const { row } = attempt
    if (isOwnUnavailableRead(error)) {
      attempt.logger.warn(
        { err: errorForRetryLog(error, attempt.logger) },
        'attempt released: the storage was unreachable',
      )
      return {
        transition: 'release',
        id: row.id,
        run: row.runs,
        error: JSON.stringify(serializeError(error)),
      }
    }
    // A recorded failure (a step's, a wait's, a child's) would only replay in the next attempt:
    // it ends the execution, naming the record, which is what `executions.retry` forgets.
    const recorded = attempt.context?.recordedFailureOf(error)
    const decision = recorded
      ? ({ transition: 'fail' } as const)
      : decideAfterFailure({
          error,
          attempt: row.failures + 1,
          maxAttempts: row.maxAttempts,
          backoff: JSON.parse(row.backoff) as BackoffOptions,
          random: this.random,
        })
    const stored = JSON.stringify(
      recorded ? { ...serializeError(error), retryable: false } : serializeError(error),
    )
    const ref = { id: row.id, run: row.runs }
    if (decision.transition === 'retry') {
      attempt.logger.warn(
        { err: errorForRetryLog(error, attempt.logger), retryInMs: decision.delayMs },
        'attempt failed; will retry',
      )
      // Relative: the back-off runs from when the failure is written, which may be later.
      return { transition: 'retry', ...ref, error: stored, delayMs: decision.delayMs }
    }
    return {
      transition: decision.transition,
      ...ref,
      error: stored,
      ...(recorded ? { failedStep: recorded } : {}),
    }
  }

  private finish(attempt: RunningAttempt): void {
    attempt.finished = true
    // A branch still in an in-memory sleep must not resume code of an attempt that is over.
    for (const cancel of [...attempt.sleepers]) cancel()
    attempt.context?.close()
    if (attempt.timer) {
      this.ctx.deps.clock.clearTimeout(attempt.timer)
      attempt.timer = undefined
    }
  }

  /** Frees the attempt's slot and forgets it. */
  release(attempt: RunningAttempt): void {
    if (attempt.released) return
    attempt.released = true
    if (this.inFlight.get(attempt.row.id) === attempt) this.inFlight.delete(attempt.row.id)
    this.slots.release(attempt)
    this.writes.forget(attempt)
    attempt.resolveDone()
  }

  /** See `Executor.failAttempt`. */
  fail(ref: { executionId: string; run: number }, error: unknown): boolean {
    const running = this.inFlight.get(ref.executionId)
    if (!running || running.finished || running.row.runs !== ref.run) return false
    this.finish(running)
    this.abortRun(running, error)
    this.settleFailure(running, error)
    return true
  }

  /** See `Executor.abortAttempt`. */
  abort(executionId: string, reason: Error): boolean {
    const attempt = this.inFlight.get(executionId)
    if (!attempt || attempt.finished) return false
    this.finish(attempt)
    this.abortRun(attempt, reason)
    attempt.logger.info({ reason: reason.message }, 'attempt aborted')
    this.ctx.observer?.attemptEnded?.(attempt.info, 'aborted', this.ctx.deps.clock.now() - attempt.startedAt)
    this.release(attempt)
    this.pump()
    return true
  }

  /**
   * Shutdown gave up waiting: every attempt still running is aborted with a `ShutdownError` and
   * released (queued again at once; a release does not use up the last attempt).
   */
  releaseAll(drainMs: number): void {
    for (const attempt of this.inFlight.values()) {
      if (attempt.finished) continue
      const error = new ShutdownError()
      this.finish(attempt)
      this.abortRun(attempt, error)
      attempt.logger.warn({ drainMs }, 'attempt released at shutdown')
      this.writes.queueSettlement(attempt, {
        transition: 'release',
        id: attempt.row.id,
        run: attempt.row.runs,
        error: JSON.stringify(serializeError(error)),
      })
    }
  }

  /** See `Executor.reportCancelled`. */
  reportCancelled(cancelled: readonly CancelledExecution[], reason: Error, now: number): void {
    for (const c of cancelled) {
      if (c.cancelledFrom === 'running') this.abort(c.id, reason)
      this.ctx.deps.changes.emit({ id: c.id, taskId: c.taskId, status: 'cancelled', run: c.run, at: now })
    }
    if (cancelled.length > 0) this.pump()
  }

  written(mayHaveWoken: boolean): void {
    this.slotsFreed(mayHaveWoken)
  }
}
