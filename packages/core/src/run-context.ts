import { childOutcome } from './child-outcome'
import { ValidationError, WaitTimeoutError, type Issue, isRetryable, serializeError } from './errors'
import { errorForRetryLog, type Logger } from './logger'
import type { StepInfo } from './observer'
import { serializePayload } from './payload'
import { Replayer } from './replay'
import { backoffDelayMs, resolveRetryPolicy, type RetryPolicyInput } from './retry-policy'
import { describeIssues, validateSchema } from './schema'
import type { ExecutionRow, NewExecution, RunState, SignalRow, StepWrite } from './storage'
import type { AnyTask, ChildOptions, StepOptions, TaskContext, WaitForSignalOptions } from './task-types'

/**
 * Replay, in short. `run` is called from the top on every attempt. Each `ctx.step` / wait
 * takes the next position when it is called (synchronously, so parallel calls get stable
 * positions) and looks at the record at that position:
 * - recorded and finished → returns (or throws) the recorded result without running;
 * - recorded but waiting → checks whether what it waits for happened (a due time: read, not
 *   rewritten; a finished child or a signal in the inbox: consumed and recorded, so a replay
 *   reads the parent's own record, never the child's row again) and returns; else it blocks;
 * - not recorded → runs the step body (or starts the wait) and records it: one write.
 * A blocked wait returns a promise that never settles. When nothing but blocked waits is in
 * flight (no step body, no record write, checked on the next macrotask so that
 * `ctx.all([ctx.child(a), ctx.child(b)])` starts both children first), the context asks its
 * host to park the execution: `waiting`, slot freed, the pending `run` promise dropped.
 * Whatever satisfies a wait queues it again, and the next run replays.
 */
export interface AttemptHost {
  readonly row: ExecutionRow
  readonly logger: Logger
  readonly signal: AbortSignal
  readonly maxPayloadBytes: number
  /**
   * Runs the work of a step or wait recorded for the first time by this attempt (see
   * `ExecutionObserver.withinStep`); `undefined` when nothing observes steps.
   */
  readonly withinStep: (<T>(step: StepInfo, fn: () => Promise<T>) => Promise<T>) | undefined
  now(): number
  /** The record as of this run's claim (memoized). The first run has none: it may skip the read. */
  loadState(): Promise<RunState>
  /**
   * The unconsumed signals as of this run's claim (memoized). Read even on the first run:
   * signals can be sent to an execution before it first runs.
   */
  loadInbox(): Promise<SignalRow[]>
  /**
   * Writes one step record, fenced by this run; rejects when the run is stale. With
   * `behind`, nobody awaits it: if it fails, the attempt's park becomes a failed attempt.
   */
  record(write: Omit<StepWrite, 'executionId' | 'run'>, options?: { behind?: boolean }): Promise<void>
  /** Validates a child's input and options; the child's parent and root are this execution. */
  prepareChild(
    task: AnyTask | string,
    input: unknown,
    options: ChildOptions,
    wakesParent: boolean,
  ): Promise<NewExecution>
  /** Nothing is running but waits: park until `runAt` (or an event). */
  park(runAt: number): void
  /** Whether a sleep until `wakeAt` may pass in memory rather than park (a short one). */
  canSleepInMemory(wakeAt: number): boolean
  /** Sleeps in memory until `wakeAt` (see canSleepInMemory); rejects when the attempt ends. */
  sleepInMemory(wakeAt: number): Promise<void>
  /** The run broke a rule of replay: fail the attempt with this error whatever `run` does next. */
  poison(error: Error): void
  /** Resolves after `ms` of the host's clock, or rejects when the attempt's signal aborts. */
  delay(ms: number): Promise<void>
  /** The engine's back-off jitter source, in [0, 1) (`EngineOptions.random`). */
  random(): number
}

export type { RecordedStep } from './replay'

/**
 * What `ctx.continueAsNew` rejects with: the run ends there. The executor reads the context's
 * `continuation`, not this error, so code that catches it still continues as new.
 */
export class ContinueAsNew extends Error {
  override readonly name = 'ContinueAsNew'
  constructor() {
    super('the run continues as a new generation (ctx.continueAsNew)')
  }
}

export class RunContext extends Replayer implements TaskContext {
  readonly executionId: string
  readonly taskId: string
  readonly attempt: number
  readonly maxAttempts: number
  readonly logger: Logger
  readonly parentId: string | null
  readonly rootId: string
  readonly generation: number
  /** Set by `continueAsNew`: the next generation's input (not yet validated). */
  continuation: { input: unknown } | undefined

  constructor(host: AttemptHost) {
    super(host)
    const { row } = host
    this.executionId = row.id
    this.taskId = row.taskId
    this.attempt = row.failures + 1
    this.maxAttempts = row.maxAttempts
    this.logger = host.logger
    this.parentId = row.parentId
    this.rootId = row.rootId ?? row.id
    this.generation = row.generation
  }

  /**
   * Read on first use: Node creates an `AbortController`'s signal lazily, and creating it is a
   * measurable part of a short run's cost, which most runs (those that never look) need not pay.
   */
  get signal(): AbortSignal {
    return this.host.signal
  }

  continueAsNew(input: unknown): Promise<never> {
    this.continuation ??= { input }
    return Promise.reject(new ContinueAsNew())
  }

  step<T>(name: string, fn: () => Promise<T> | T, options: StepOptions = {}): Promise<T> {
    return this.perform(name, 'step', async (record, position) => {
      if (record) return { value: this.replay<T>(record) }
      let value: T
      try {
        value = await this.runBody(name, fn, options.retry)
      } catch (error) {
        // Only a final error is recorded: a retryable one leaves the step to the next attempt.
        if (options.retry === undefined && isRetryable(error)) throw error
        await this.write({ position, name, kind: 'step', status: 'failed', error: errorJson(error) })
        this.noteRecordedFailure(error, position, name)
        throw error
      }
      const json = serializePayload(value, `step "${name}" value`, this.host.maxPayloadBytes)
      await this.write({ position, name, kind: 'step', status: 'done', value: json })
      // The first run sees what a replay will see: the JSON round trip.
      return { value: JSON.parse(json) as T }
    })
  }

  patched(changeId: string): Promise<boolean> {
    return this.patch(changeId)
  }

  sleep(name: string, ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0)
      return Promise.reject(
        new TypeError(`ctx.sleep("${name}"): ms must be a number >= 0, got ${String(ms)}`),
      )
    return this.sleepUntilTime(name, () => this.host.now() + ms)
  }

  sleepUntil(name: string, until: Date | number): Promise<void> {
    const at = typeof until === 'number' ? until : until.getTime()
    if (!Number.isFinite(at))
      return Promise.reject(new TypeError(`ctx.sleepUntil("${name}"): expected a valid date`))
    return this.sleepUntilTime(name, () => at)
  }

  private sleepUntilTime(name: string, wakeAtIfNew: () => number): Promise<void> {
    return this.perform<void>(name, 'sleep', async (record, position) => {
      if (record?.status === 'done') return { value: undefined }
      const wakeAt = record?.wakeAt ?? wakeAtIfNew()
      if (wakeAt <= this.host.now()) {
        // A recorded sleep that is over needs no second write: its wake time says it all.
        if (!record) await this.write({ position, name, kind: 'sleep', status: 'done', wakeAt })
        return { value: undefined }
      }
      if (this.host.canSleepInMemory(wakeAt)) {
        // A short sleep passes in memory. Its record (the wake time) is written first: that is
        // what a replay after a crash during the sleep resumes from.
        if (!record) await this.write({ position, name, kind: 'sleep', status: 'waiting', wakeAt })
        await this.host.sleepInMemory(wakeAt)
        return { value: undefined }
      }
      if (!record) this.writeBehind({ position, name, kind: 'sleep', status: 'waiting', wakeAt })
      return { blocked: wakeAt }
    })
  }

  waitForSignal<T = unknown>(name: string, options: WaitForSignalOptions<T> = {}): Promise<T> {
    const bad = checkTimeout(`ctx.waitForSignal("${name}")`, options.timeoutMs)
    if (bad) return Promise.reject(bad)
    const signalName = options.signal ?? name
    return this.perform<T>(name, 'signal', async (record, position) => {
      if (record && record.status !== 'waiting') return { value: this.replay<T>(record) }
      type Found = { candidate: SignalRow } & ({ value: T } | { issues: Issue[] })
      const found = await this.scanInbox(async (inbox): Promise<Found | undefined> => {
        for (const candidate of inbox) {
          if (candidate.name !== signalName || this.consumedSignals.has(candidate.seq)) continue
          const payload = JSON.parse(candidate.payload) as unknown
          if (!options.schema) {
            if (options.where && !options.where(payload as T)) continue
            this.consumedSignals.add(candidate.seq)
            return { candidate, value: payload as T }
          }
          const checked = await validateSchema(options.schema, payload)
          if (!checked.ok) {
            this.consumedSignals.add(candidate.seq)
            return { candidate, issues: checked.issues }
          }
          if (options.where && !options.where(checked.value)) continue
          this.consumedSignals.add(candidate.seq)
          return { candidate, value: checked.value }
        }
        return undefined
      })
      const now = this.host.now()
      if (found && 'issues' in found) {
        const error = new ValidationError(
          `signal "${signalName}" does not match the schema of wait "${name}": ${describeIssues(found.issues)}`,
          found.issues,
          'INVALID_SIGNAL',
        )
        await this.write(
          { position, name, kind: 'signal', status: 'failed', error: errorJson(error), signalName },
          found.candidate.seq,
        )
        this.noteRecordedFailure(error, position, name)
        throw error
      }
      if (found) {
        await this.write(
          { position, name, kind: 'signal', status: 'done', value: found.candidate.payload, signalName },
          found.candidate.seq,
        )
        return { value: found.value }
      }
      const timeoutAt = record
        ? record.wakeAt
        : options.timeoutMs === undefined
          ? null
          : now + options.timeoutMs
      if (timeoutAt !== null && timeoutAt <= now) {
        const error = new WaitTimeoutError(`wait "${name}" for signal "${signalName}" timed out`)
        await this.write({
          position,
          name,
          kind: 'signal',
          status: 'failed',
          error: errorJson(error),
          signalName,
          wakeAt: timeoutAt,
        })
        this.noteRecordedFailure(error, position, name)
        throw error
      }
      if (!record)
        this.writeBehind({ position, name, kind: 'signal', status: 'waiting', signalName, wakeAt: timeoutAt })
      return { blocked: timeoutAt ?? undefined }
    })
  }

  child<TOutput = unknown>(
    name: string,
    task: AnyTask | string,
    input: unknown,
    options: ChildOptions = {},
  ): Promise<TOutput> {
    return this.perform<TOutput>(name, 'child', async (record, position, state) => {
      if (record && record.status !== 'waiting') return { value: this.replay<TOutput>(record) }
      if (!record) {
        const child = await this.host.prepareChild(task, input, options, true)
        this.writeBehind({ position, name, kind: 'child', status: 'waiting', childId: child.id }, child)
        return { blocked: undefined }
      }
      const child = state.children.find((c) => c.id === record.childId)
      const outcome = child && childOutcome(child)
      if (!outcome) return { blocked: undefined }
      // Consumed: recorded in this execution's own record, so every later replay reads what the
      // run saw here, whatever becomes of the child's row (a retry, retention). Usually the
      // child's own settlement recorded it already (Settlement.parentRecord); when it could not
      // (this process did not start the child, a cancel or a deadline ended it), the run does,
      // written behind like a wait's record: the run goes on at once, and the attempt's park or
      // end is written only after it. If it cannot be written the record stays waiting on the child, whose
      // row still says the same, and a park becomes a failed attempt.
      this.writeBehind({ position, name, kind: 'child', childId: record.childId, ...outcome })
      return { value: this.replay<TOutput>({ ...record, ...outcome }) }
    })
  }

  /**
   * Waits until something outside calls `executions.wakeup({ key, output })` (resolves with
   * `output`) or `{ key, error }` (throws an error with that message and code). Keys are unique
   * across all executions: a key in use is a `ConflictError`. `timeoutMs` throws a catchable
   * `WaitTimeoutError`.
   */
  waitForWakeup<T = unknown>(name: string, options: { key: string; timeoutMs?: number }): Promise<T> {
    const { key } = options
    const bad = checkTimeout(`ctx.waitForWakeup("${name}")`, options.timeoutMs)
    if (bad) return Promise.reject(bad)
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
      return Promise.reject(
        new TypeError(`ctx.waitForWakeup("${name}"): key must be a string of 1 to 255 characters`),
      )
    }
    return this.perform<T>(name, 'wakeup', async (record, position) => {
      if (record && record.status !== 'waiting') return { value: this.replay<T>(record) }
      const now = this.host.now()
      const timeoutAt = record
        ? record.wakeAt
        : options.timeoutMs === undefined
          ? null
          : now + options.timeoutMs
      if (timeoutAt !== null && timeoutAt <= now) {
        const error = new WaitTimeoutError(`wait "${name}" for wakeup key "${key}" timed out`)
        await this.write({
          position,
          name,
          kind: 'wakeup',
          status: 'failed',
          error: errorJson(error),
          wakeupKey: key,
          wakeAt: timeoutAt,
        })
        this.noteRecordedFailure(error, position, name)
        throw error
      }
      if (!record)
        await this.write({
          position,
          name,
          kind: 'wakeup',
          status: 'waiting',
          wakeupKey: key,
          wakeAt: timeoutAt,
        })
      return { blocked: timeoutAt ?? undefined }
    })
  }

  spawn(
    name: string,
    task: AnyTask | string,
    input: unknown,
    options: ChildOptions = {},
  ): Promise<{ executionId: string }> {
    return this.perform(name, 'spawn', async (record, position) => {
      if (record) return { value: this.replay<{ executionId: string }>(record) }
      const child = await this.host.prepareChild(task, input, options, false)
      const value = JSON.stringify({ executionId: child.id })
      await this.write(
        { position, name, kind: 'spawn', status: 'done', childId: child.id, value },
        undefined,
        child,
      )
      return { value: { executionId: child.id } }
    })
  }

  all<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
    return Promise.all(promises)
  }

  allSettled<T extends readonly unknown[]>(
    promises: T,
  ): Promise<{ -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>> }> {
    return Promise.allSettled(promises)
  }

  private async runBody<T>(
    name: string,
    fn: () => Promise<T> | T,
    retry: RetryPolicyInput | undefined,
  ): Promise<T> {
    const policy = retry === undefined ? undefined : resolveRetryPolicy(retry, `step "${name}" retry`)
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (error) {
        if (!policy || !isRetryable(error) || attempt >= policy.maxAttempts || this.signal.aborted)
          throw error
        const delayMs = backoffDelayMs(policy.backoff, attempt, () => this.host.random())
        this.logger.warn(
          { step: name, stepAttempt: attempt, err: errorForRetryLog(error, this.logger), retryInMs: delayMs },
          'step failed; will retry',
        )
        await this.host.delay(delayMs)
      }
    }
  }
}

function checkTimeout(where: string, timeoutMs: number | undefined): TypeError | undefined {
  if (timeoutMs === undefined || (Number.isFinite(timeoutMs) && timeoutMs >= 0)) return undefined
  return new TypeError(`${where}: timeoutMs must be a finite number >= 0, got ${String(timeoutMs)}`)
}

function errorJson(error: unknown): string {
  return JSON.stringify(serializeError(error))
}
