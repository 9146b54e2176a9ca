import { decideAfterFailure } from './attempt-outcome'
import { childOutcome } from './child-outcome'
import { defer } from './defer'
import type { ChangeFeed } from './change-feed'
import type { Clock, TimerHandle } from './clock'
import {
  ConflictError,
  DeadlineExceededError,
  RetryableError,
  LeaseExpiredError,
  ParentEndedError,
  RatchetError,
  RecoveriesExhaustedError,
  ShutdownError,
  SuspendedError,
  TimeoutError,
  ValidationError,
  serializeError,
} from './errors'
import type { AttemptOutcome, ExecutionObserver, StorageOperation } from './observer'
import { prepareExecution } from './prepare-execution'
import { ContinueAsNew, RunContext, type AttemptHost } from './run-context'
import { errorForRetryLog, type Logger } from './logger'
import { serializePayload } from './payload'
import type { TaskRegistry } from './registry'
import type { BackoffOptions } from './retry-policy'
import { describeIssues, validateSchema } from './schema'
import type { ExecutionStatus } from './state-machine'
import type {
  CancelledExecution,
  ExecutionRow,
  NewExecution,
  RunRef,
  RunState,
  Settlement,
  SettleOutcome,
  SignalRow,
  StepWrite,
  StepWriteResult,
  Storage,
} from './storage'
import type { AnyTask, ChildOptions } from './task'

/**
 * Terminology.
 * - pump: one claim loop. It housekeeps first when that is due, then claims as many due
 *   executions as there are free slots, starts them, and when nothing more is due arms one
 *   timer for the next due time (`Storage.nextDueAt`).
 * - housekeeping: the timers' work kept out of the claim (`Storage.housekeep`): waiters whose
 *   time came are queued again, executions past their deadline time out. Due when the due
 *   timer fires, on the safety-net poll, and when the next due time has already passed.
 * - flush: writes every settlement produced since the last flush in one storage call
 *   (group commit), then frees those slots and pumps again.
 * - slot: an attempt counts against `concurrency` from its claim until it parks (its park
 *   may still be queued), settles (when that is written) or is abandoned; and not while it is
 *   in an in-memory short sleep (it takes a slot back, before any new claim, to go on).
 *
 * Wake-ups are pushed, never polled on the hot path: `wake()` (enqueue, cancel), a flush, or
 * the next-due timer start a pump. A slow safety-net poll (`pollIntervalMs`) also recovers
 * expired leases and housekeeps.
 */
interface PendingStepWrite {
  write: StepWrite
  resolve: () => void
  reject: (error: unknown) => void
  /** Nobody awaits it (a blocking wait's record): a failure must fail the attempt's park. */
  behind: boolean
  /** When it was queued (clock ms): an old backlog is written in order, see takeStepWrites. */
  queuedAt: number
}

/** A step record the storage refused (written alone, it still threw). */
type Failed = { failed: unknown }

/** Most writes in one storage transaction; a larger backlog is written in chunks. */
const MAX_WRITES_PER_FLUSH = 256
/** A step record queued this long is written before newer ones, whoever they belong to. */
const MAX_WRITE_DELAY_MS = 1_000
/** Claiming pauses while this many step records wait to be written (a memory bound). */
const MAX_PENDING_STEP_WRITES = 10_000
/** Most executions one housekeep call changes; a larger backlog takes several (see `housekeep`). */
const HOUSEKEEP_BATCH = 1000
/** Another process was housekeeping (`busy`): try again after this long rather than spin. */
const HOUSEKEEP_BUSY_RETRY_MS = 100

export interface ExecutorOptions {
  /** Attempts this process runs at once. @default 10 */
  concurrency?: number
  /** How long a claim is valid without a heartbeat. @default 30_000 */
  leaseMs?: number
  /** How often running attempts' leases are extended. @default leaseMs / 3 */
  heartbeatMs?: number
  /** Safety-net interval for lease recovery and a claim pass. @default 5_000 */
  pollIntervalMs?: number
  /** Most executions claimed in one statement. @default 100 */
  claimBatchSize?: number
  /** Largest output, in bytes of JSON. @default 1 MiB */
  maxPayloadBytes?: number
  /**
   * A durable sleep this short or shorter is waited in memory instead of parking: its record is
   * written as usual, the execution stays `running` under its lease (holding no slot), and the
   * run goes on without a requeue, claim and replay. A crash resumes it from the record like
   * any wait. Only while the executor runs (not in `tick()`) and only when the sleep ends before
   * the attempt's timeout and deadline. `0` parks every sleep. @default 1_000
   */
  shortSleepMs?: number
  /** This worker's lease owner id. @default a random id */
  workerId?: string
  /** Source of randomness for back-off jitter, in [0, 1). @default Math.random */
  random?: () => number
  /**
   * Runs each attempt's task code inside `fn`: its `run` (and everything that code starts), and
   * each abort of its `ctx.signal` (which runs the code's listeners; the executor's timers and
   * flushes run in the scope of whichever run set them off). A host gives one that enters an
   * async context holding the attempt (Node's AsyncLocalStorage), so that its process-level
   * error handlers can tell which attempt a stray error came from (a throw in a timer the code
   * set, a rejected promise it left unhandled, a throwing abort listener) and fail it with
   * {@link Executor.failAttempt}. The core imports no runtime API, hence a port. Must call `fn`
   * once, synchronously, and return what it returns. @default calls `fn` as is
   */
  withinAttempt?: <T>(attempt: AttemptInfo, fn: () => T) => T
  /**
   * Metrics and tracing hooks (see {@link ExecutionObserver}). @default none (no cost but a
   * null check per call site)
   */
  observer?: ExecutionObserver
}

/** The last failed storage call of the executor, while none has succeeded since (`Executor.storageFailure`). */
export interface StorageFailure {
  operation: StorageOperation
  message: string
  /** When it failed (clock ms). */
  at: number
}

/** Which run some code belongs to (see `ExecutorOptions.withinAttempt`). */
export interface AttemptInfo {
  executionId: string
  taskId: string
  /** The attempt (`failures + 1`, what `ctx.attempt` says), for logs. */
  attempt: number
  /** The run (`ExecutionRow.runs` as claimed): the fence of its writes. */
  run: number
}

export interface ExecutorDeps {
  storage: Storage
  registry: TaskRegistry
  clock: Clock
  logger: Logger
  changes: ChangeFeed
}

/** @internal */
export interface RunningAttempt {
  readonly row: ExecutionRow
  readonly task: AnyTask
  /** Which run this is, as `withinAttempt` is told. */
  readonly info: AttemptInfo
  readonly controller: AbortController
  context: RunContext | undefined
  state: Promise<RunState> | undefined
  readonly logger: Logger
  readonly startedAt: number
  timer: TimerHandle | undefined
  /** A result was produced (settlement queued) or the attempt was abandoned. */
  finished: boolean
  /**
   * Counts against `concurrency`. Set at the claim; cleared when it parks (its park may still
   * be queued: it runs no code), while it is in an in-memory sleep, and when it is released.
   */
  holdsSlot: boolean
  /** Its slot and result are done with (idempotent `release`). */
  released: boolean
  /** When its timeout or deadline fires; restarted after an in-memory sleep. */
  endsAt: number
  /** Cancels each in-memory sleep in progress (the attempt ended meanwhile). */
  readonly sleepers: Set<() => void>
  /** This attempt started a child it awaits (`ctx.child`). */
  startedChildren: boolean
  readonly done: Promise<void>
  resolveDone: () => void
}

/** The transitions that end an execution. */
const ENDS: Record<Settlement['transition'], boolean> = {
  park: false,
  continue: false,
  complete: true,
  retry: false,
  release: false,
  fail: true,
  time_out: true,
}

const PARENT_ENDED_ERROR = JSON.stringify(serializeError(new ParentEndedError()))
/** An error Ratchet raises about an execution, not in it: its stack would only show the executor. */
const stackless = (error: Error) => JSON.stringify({ ...serializeError(error), stack: undefined })
const LEASE_EXPIRED_ERROR = stackless(new LeaseExpiredError())

/** Most entries of `Executor.awaitedAt`; past it the oldest go (their parents record the outcome). */
const MAX_AWAITED_CHILDREN = 100_000

const OUTCOME: Record<Settlement['transition'], AttemptOutcome> = {
  park: 'parked',
  complete: 'completed',
  retry: 'retried',
  release: 'released',
  fail: 'failed',
  time_out: 'timed_out',
  continue: 'continued',
}

const SETTLED_STATUS: Record<Settlement['transition'], ExecutionStatus> = {
  park: 'waiting',
  continue: 'queued',
  complete: 'completed',
  retry: 'queued',
  release: 'queued',
  fail: 'failed',
  time_out: 'timed_out',
}

type State = 'idle' | 'running' | 'draining' | 'stopped'

export class Executor {
  readonly workerId: string
  private readonly concurrency: number
  private readonly leaseMs: number
  private readonly heartbeatMs: number
  private readonly pollIntervalMs: number
  private readonly claimBatchSize: number
  private readonly shortSleepMs: number
  /** @internal */
  readonly maxPayloadBytes: number
  /** @internal Back-off jitter source, for attempts' step retries too. */
  readonly random: () => number
  private readonly taskIds: string[]
  private readonly withinAttempt: ExecutorOptions['withinAttempt']
  /** @internal */
  readonly observer: ExecutionObserver | undefined
  private failure: StorageFailure | undefined
  /**
   * Where the parent of each awaited child started in this process recorded it (the child's
   * step), by child id: the settlement that ends the child records its outcome there too, in
   * its own transaction, so the parent does not write it when it resumes (see
   * `Settlement.parentRecord`). A child this process does not know (started before a restart,
   * evicted, or rerun: see `forgetAwaited`) is recorded by its parent's run instead, when it
   * first sees the child's end.
   */
  private readonly awaitedAt = new Map<string, { parentId: string; position: number }>()

  private state: State = 'idle'
  private readonly inFlight = new Map<string, RunningAttempt>()
  private pending: { settlement: Settlement; attempt: RunningAttempt }[] = []
  private pendingSteps: PendingStepWrite[] = []
  // Attempts one of whose step records could not be written (see takeReadySettlements).
  private readonly unrecorded = new Map<RunningAttempt, unknown>()
  // Attempts holding a slot (see RunningAttempt.holdsSlot).
  private busySlots = 0
  // In-memory sleeps that are over, waiting for a slot to go on (they go before new claims).
  private readonly readySleepers: (() => void)[] = []
  private flushScheduled = false
  private flushing: Promise<void> | undefined
  private pumpScheduled = false
  /** The claim loop in progress, if any; a drain waits for it so no claimed row is left behind. */
  private pumping: Promise<void> | undefined
  private claimAgain = false
  private dueTimer: TimerHandle | undefined
  private dueAt: number | undefined
  /**
   * Housekeep before the next claim: at start, and when the due timer fired, the poll ran or
   * the next due time had passed.
   */
  private housekeepDue = true
  /** Another process was housekeeping: until then the due timer retries, nothing else does. */
  private housekeepBusyUntil = 0
  private pollTimer: TimerHandle | undefined
  private heartbeatTimer: TimerHandle | undefined
  private stopping: Promise<void> | undefined

  constructor(
    /** @internal */
    readonly deps: ExecutorDeps,
    options: ExecutorOptions = {},
  ) {
    this.concurrency = positiveInt(options.concurrency ?? 10, 'concurrency')
    this.leaseMs = positiveInt(options.leaseMs ?? 30_000, 'leaseMs')
    this.heartbeatMs = positiveInt(
      options.heartbeatMs ?? Math.max(1, Math.floor(this.leaseMs / 3)),
      'heartbeatMs',
    )
    if (this.heartbeatMs >= this.leaseMs) throw new TypeError('heartbeatMs must be shorter than leaseMs')
    this.pollIntervalMs = positiveInt(options.pollIntervalMs ?? 5_000, 'pollIntervalMs')
    this.claimBatchSize = positiveInt(options.claimBatchSize ?? 100, 'claimBatchSize')
    this.shortSleepMs = options.shortSleepMs ?? 1000
    if (!Number.isFinite(this.shortSleepMs) || this.shortSleepMs < 0)
      throw new TypeError(`shortSleepMs must be a number >= 0, got ${String(options.shortSleepMs)}`)
    this.maxPayloadBytes = positiveInt(options.maxPayloadBytes ?? 1024 * 1024, 'maxPayloadBytes')
    this.random = options.random ?? Math.random
    this.workerId = options.workerId ?? `worker-${crypto.randomUUID()}`
    this.taskIds = deps.registry.ids()
    this.withinAttempt = options.withinAttempt
    this.observer = options.observer
  }

  /**
   * The executor's last failed storage call (a claim, a result or step write, a lease
   * recovery or heartbeat) while none has succeeded since, else `undefined`: the storage is
   * unreachable or refusing writes. A readiness probe reports it. An idle executor notices a
   * failure within `pollIntervalMs` (its safety-net poll reads the storage).
   */
  get storageFailure(): StorageFailure | undefined {
    return this.failure
  }

  private storageFailed(operation: StorageOperation, error: unknown): void {
    this.failure = {
      operation,
      message: error instanceof Error ? error.message : String(error),
      at: this.deps.clock.now(),
    }
    this.observer?.storageError?.(operation, error)
  }

  /** Attempts whose result is not written yet (parks still queued included). */
  get activeAttempts(): number {
    return this.inFlight.size
  }

  /** The runs this process is running now (their code may still be in flight), oldest first. */
  runningAttempts(): AttemptInfo[] {
    const running: AttemptInfo[] = []
    for (const attempt of this.inFlight.values()) if (!attempt.finished) running.push(attempt.info)
    return running
  }

  /** In-memory short sleeps in progress (see `shortSleepMs`). */
  get inMemorySleeps(): number {
    let n = 0
    for (const a of this.inFlight.values()) n += a.sleepers.size
    return n
  }

  /**
   * Slots free for claiming. A parked attempt whose park is still queued runs no code, so it
   * frees its slot at once (a fan-out's slot is not held while its children are written); so
   * does one in an in-memory sleep, which gets a slot back before any new claim when it wakes.
   * Claiming pauses while the queue of unwritten records is long, which bounds that backlog.
   */
  private freeSlots(): number {
    if (this.pendingSteps.length >= MAX_PENDING_STEP_WRITES) return 0
    return Math.min(this.concurrency - this.busySlots - this.readySleepers.length, this.claimBatchSize)
  }

  private takeSlot(attempt: RunningAttempt): void {
    if (attempt.holdsSlot) return
    attempt.holdsSlot = true
    this.busySlots++
  }

  /** Frees the attempt's slot: first to a woken in-memory sleeper, else to the next claim. */
  private freeSlot(attempt: RunningAttempt): void {
    if (!attempt.holdsSlot) return
    attempt.holdsSlot = false
    this.busySlots--
    while (this.busySlots < this.concurrency && this.readySleepers.length > 0) this.readySleepers.shift()!()
    this.schedulePump()
  }

  get isRunning(): boolean {
    return this.state === 'running'
  }

  /**
   * Starts claiming: recovers leases left by dead processes (at once when the storage is
   * single-writer, else when they expire), then pumps. Throws if already started.
   */
  start(): void {
    if (this.state !== 'idle') throw new Error(`executor cannot start: it is ${this.state}`)
    this.state = 'running'
    this.armPoll()
    this.armHeartbeat()
    void this.recover(this.deps.storage.capabilities.singleWriter).then(() => this.schedulePump())
  }

  /** Something may be claimable now (an enqueue, a cancel): pump soon. Cheap to call often. */
  wake(): void {
    this.schedulePump()
  }

  /**
   * One claim/run/settle pass for tests and scripts, on an executor that was not started:
   * recovers expired leases, claims up to the free slots, runs the claimed attempts and
   * writes their results. Resolves when all of them are settled.
   */
  async tick(): Promise<{ claimed: number }> {
    if (this.state !== 'idle')
      throw new Error(`tick() steps an executor that was not started; it is ${this.state}`)
    await this.recover(false)
    await this.housekeep()
    const limit = this.freeSlots()
    if (limit <= 0) return { claimed: 0 }
    const rows = await this.claim(limit)
    await Promise.all(rows.map((row) => this.startAttempt(row).done))
    return { claimed: rows.length }
  }

  /**
   * Graceful stop: claims nothing more, waits up to `drainMs` for running attempts to
   * finish, then aborts the rest with a `ShutdownError` and releases them (queued again at
   * once; a release does not use up the last attempt). Resolves when every result is written.
   */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopping ??= this.drain(options.drainMs ?? 30_000)
    return this.stopping
  }

  private async drain(drainMs: number): Promise<void> {
    this.state = 'draining'
    this.clearTimer('dueTimer')
    this.clearTimer('pollTimer')
    // The drain deadline runs from the moment stop() is called.
    let expired = false
    let deadline: TimerHandle | undefined
    const timeUp = new Promise<void>((resolve) => {
      deadline = this.deps.clock.setTimeout(() => {
        expired = true
        resolve()
      }, drainMs)
    })
    // A claim already in flight starts its attempts (they are ours now); the drain covers them.
    await this.pumping
    this.clearTimer('dueTimer')
    while (this.inFlight.size > 0 && !expired) {
      await Promise.race([Promise.all([...this.inFlight.values()].map((a) => a.done)), timeUp])
    }
    if (deadline) this.deps.clock.clearTimeout(deadline)
    for (const attempt of this.inFlight.values()) {
      if (attempt.finished) continue
      const error = new ShutdownError()
      this.finish(attempt)
      this.abortRun(attempt, error)
      attempt.logger.warn({ drainMs }, 'attempt released at shutdown')
      this.queueSettlement(attempt, {
        transition: 'release',
        id: attempt.row.id,
        run: attempt.row.runs,
        error: JSON.stringify(serializeError(error)),
      })
    }
    await this.flushNow()
    this.clearTimer('heartbeatTimer')
    this.state = 'stopped'
  }

  /**
   * Fails a running attempt of this process with `error`, as if its run had thrown it (retried
   * by its policy, or the end of the execution), and aborts its `ctx.signal` with it: for an
   * error its code let escape the run (a throw in a timer it set, an unhandled rejection), which
   * the host caught and attributed (see `withinAttempt`). Without it, a run whose code died that
   * way may never settle. Returns whether that attempt was still running here: `false` once it
   * settled, parked or was aborted (then the error changes nothing; the host only logs it).
   */
  failAttempt(attempt: { executionId: string; run: number }, error: unknown): boolean {
    const running = this.inFlight.get(attempt.executionId)
    if (!running || running.finished || running.row.runs !== attempt.run) return false
    this.finish(running)
    this.abortRun(running, error)
    this.settleFailure(running, error)
    return true
  }

  /**
   * Aborts a running attempt of this process without writing anything (the execution was
   * cancelled, or its lease is gone): `ctx.signal` fires with `reason` and the slot is freed.
   * Returns whether an attempt was aborted.
   */
  abortAttempt(executionId: string, reason: Error): boolean {
    const attempt = this.inFlight.get(executionId)
    if (!attempt || attempt.finished) return false
    this.finish(attempt)
    this.abortRun(attempt, reason)
    attempt.logger.info({ reason: reason.message }, 'attempt aborted')
    this.observer?.attemptEnded?.(attempt.info, 'aborted', this.deps.clock.now() - attempt.startedAt)
    this.release(attempt)
    this.schedulePump()
    return true
  }

  // ── claiming ──────────────────────────────────────────────────────────────────────────

  private schedulePump(): void {
    if (this.state !== 'running' || this.pumpScheduled) return
    this.pumpScheduled = true
    defer(() => {
      this.pumpScheduled = false
      void this.pump()
    })
  }

  private pump(): Promise<void> {
    if (this.pumping) {
      this.claimAgain = true
      return this.pumping
    }
    this.pumping = this.claimLoop().finally(() => {
      this.pumping = undefined
      // a wake() that arrived after the loop's last check must not be lost
      if (this.claimAgain) this.schedulePump()
    })
    return this.pumping
  }

  private async claimLoop(): Promise<void> {
    let operation: StorageOperation = 'claim'
    try {
      for (;;) {
        this.claimAgain = false
        if (this.state !== 'running') return
        // Before the slots are counted: deadlines expire and waiters wake even when all are busy.
        if (this.housekeepDue) {
          operation = 'housekeep'
          await this.housekeep()
          operation = 'claim'
        }
        const limit = this.freeSlots()
        if (limit <= 0) return // a flush pumps again when slots free up
        const rows = await this.claim(limit)
        for (const row of rows) this.startAttempt(row)
        if (rows.length === limit || this.claimAgain) continue
        await this.armDueTimer()
        if (!this.claimAgain) return
      }
    } catch (error) {
      this.storageFailed(operation, error)
      this.deps.logger.error(
        { err: serializeError(error) },
        `${operation === 'claim' ? 'claim' : 'waking due waiters and expiring deadlines'} failed; retrying after the poll interval`,
      )
    }
  }

  /**
   * Does the timers' work due now (`Storage.housekeep`), in batches while the storage says
   * there is more, letting timers and I/O run between batches. Every change goes to the change
   * feed at once: a deadline that expires a waiting or queued execution reaches its watchers
   * and waiters like any other change. When another process is at it (`busy`), the due timer
   * tries again in HOUSEKEEP_BUSY_RETRY_MS. Throws what the storage throws.
   */
  private async housekeep(): Promise<void> {
    this.housekeepDue = false
    for (let first = true; ; first = false) {
      if (!first) await new Promise<void>((resolve) => defer(resolve))
      const now = this.deps.clock.now()
      const { changed, more, busy } = await this.deps.storage.housekeep(now, HOUSEKEEP_BATCH)
      this.failure = undefined
      if (busy) {
        this.housekeepBusyUntil = now + HOUSEKEEP_BUSY_RETRY_MS
        if (this.state === 'running') this.armDueTimerAt(this.housekeepBusyUntil)
        return
      }
      for (const change of changed) {
        if (change.to === 'timed_out') {
          this.deps.logger.warn(
            { executionId: change.id, taskId: change.taskId, from: change.from },
            'execution timed_out: past its deadline',
          )
        }
        this.deps.changes.emit({
          id: change.id,
          taskId: change.taskId,
          status: change.to,
          run: change.run,
          at: now,
        })
      }
      if (!more) return
    }
  }

  /** Claims up to `limit` due executions; each claim goes to the change feed at once. */
  private async claim(limit: number): Promise<ExecutionRow[]> {
    if (this.taskIds.length === 0) return []
    const now = this.deps.clock.now()
    const { claimed } = await this.deps.storage.claim({
      owner: this.workerId,
      now,
      leaseMs: this.leaseMs,
      limit,
      taskIds: this.taskIds,
    })
    this.failure = undefined
    for (const row of claimed) {
      this.deps.changes.emit({
        id: row.id,
        taskId: row.taskId,
        status: 'running',
        run: row.runs,
        at: now,
      })
    }
    return claimed
  }

  /**
   * One timer for the next due time (`Storage.nextDueAt`: a delayed or retried execution, a
   * sleep's end, a wait's timeout, a deadline), so they all happen on time without polling.
   * Already passed: housekeep and claim again at once, unless another process is housekeeping
   * (then the busy retry's timer is armed and is left to fire).
   */
  private async armDueTimer(): Promise<void> {
    const next = await this.deps.storage.nextDueAt(this.taskIds)
    // stop() may have begun while the query ran: arm nothing then.
    if (this.state !== 'running') return
    if (next === null) {
      this.clearTimer('dueTimer')
      return
    }
    const now = this.deps.clock.now()
    if (next > now) return this.armDueTimerAt(next)
    if (now < this.housekeepBusyUntil) return this.armDueTimerAt(this.housekeepBusyUntil)
    this.housekeepDue = true
    this.claimAgain = true
  }

  /** Arms the due timer for `at`, unless it is already armed for then or sooner. */
  private armDueTimerAt(at: number): void {
    if (this.dueTimer && this.dueAt !== undefined && this.dueAt <= at) return
    this.clearTimer('dueTimer')
    this.dueAt = at
    this.dueTimer = this.deps.clock.setTimeout(() => {
      this.dueTimer = undefined
      this.dueAt = undefined
      this.housekeepDue = true
      this.schedulePump()
    }, at - this.deps.clock.now())
  }

  // ── running one attempt ───────────────────────────────────────────────────────────────

  private startAttempt(row: ExecutionRow): RunningAttempt {
    const task = this.deps.registry.get(row.taskId)
    if (!task) throw new Error(`claimed an execution of unregistered task ${row.taskId}`)
    const stale = this.inFlight.get(row.id)
    // Our own earlier attempt of this execution lost its lease and was recovered: it is stale.
    if (stale) this.abortAttempt(row.id, new LeaseExpiredError())

    let resolveDone!: () => void
    const done = new Promise<void>((resolve) => (resolveDone = resolve))
    const startedAt = this.deps.clock.now()
    const info: AttemptInfo = {
      executionId: row.id,
      taskId: row.taskId,
      attempt: row.failures + 1,
      run: row.runs,
    }
    const attempt: RunningAttempt = {
      row,
      task,
      info,
      controller: new AbortController(),
      context: undefined,
      state: undefined,
      // Every line about the run carries its executionId, taskId, attempt and run.
      logger: this.deps.logger.child({ ...info }),
      startedAt,
      endsAt: startedAt,
      timer: undefined,
      finished: false,
      holdsSlot: false,
      released: false,
      sleepers: new Set(),
      startedChildren: false,
      done,
      resolveDone,
    }
    this.inFlight.set(row.id, attempt)
    this.observer?.attemptStarted?.(info, Math.max(0, startedAt - row.runAt))
    this.takeSlot(attempt)
    this.armAttemptTimer(attempt, startedAt)
    attempt.logger.debug({ maxAttempts: row.maxAttempts, failures: row.failures }, 'attempt started')
    const context = (attempt.context = new RunContext(new ExecutorHost(this, attempt)))
    const run = () => this.runTask(task, row.input, context)
    const running = this.withinAttempt ? this.withinAttempt(info, run) : run()
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
    if (this.withinAttempt) this.withinAttempt(attempt.info, abort)
    else abort()
  }

  /**
   * (Re)starts the attempt's time limit at `from`: its timeout, or its deadline if sooner. An
   * in-memory sleep restarts it when it ends, as the next attempt would have after a park.
   */
  private armAttemptTimer(attempt: RunningAttempt, from: number): void {
    const { row } = attempt
    if (attempt.timer) this.deps.clock.clearTimeout(attempt.timer)
    const deadlineLeft = row.deadlineAt === null ? Infinity : row.deadlineAt - from
    const limit = Math.max(0, Math.min(row.timeoutMs, deadlineLeft))
    attempt.endsAt = from + limit
    attempt.timer = this.deps.clock.setTimeout(
      () => this.onTimeout(attempt, deadlineLeft <= row.timeoutMs),
      limit,
    )
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
    this.queueSettlement(attempt, {
      transition: 'complete',
      id: attempt.row.id,
      run: attempt.row.runs,
      output,
    })
  }

  /**
   * @internal The run failed (its promise rejected, or it broke a rule of replay). Its
   * `ctx.signal` aborts with the error: another branch of the same run (a step beside the one
   * that threw in `ctx.all`) may still be running, and must not go on beside the next attempt.
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
        this.queueSettlement(attempt, { transition: 'continue', id: row.id, run: row.runs, input: json })
      })
      .catch((error: unknown) => this.settleFailure(attempt, error))
  }

  private onTimeout(attempt: RunningAttempt, deadline: boolean): void {
    attempt.timer = undefined
    if (attempt.finished) return
    const { row } = attempt
    const error = deadline
      ? new DeadlineExceededError(`execution of task "${row.taskId}" ran past its deadline`)
      : new TimeoutError(
          `attempt ${row.failures + 1} of task "${row.taskId}" ran past its timeout of ${row.timeoutMs} ms`,
        )
    this.finish(attempt)
    this.abortRun(attempt, error)
    this.settleFailure(attempt, error)
  }

  /**
   * @internal Whether a sleep until `wakeAt` may pass in memory (see shortSleepMs): the executor
   * runs (not `tick()`), the sleep is short, and it ends well before the attempt's time limit
   * and the execution's deadline.
   */
  canSleepInMemory(attempt: RunningAttempt, wakeAt: number): boolean {
    const now = this.deps.clock.now()
    const deadline = attempt.row.deadlineAt ?? Infinity
    return (
      this.state === 'running' &&
      !attempt.finished &&
      wakeAt - now <= this.shortSleepMs &&
      wakeAt + this.shortSleepMs < attempt.endsAt &&
      wakeAt < deadline
    )
  }

  /**
   * @internal Sleeps in memory until `wakeAt`, holding no slot; resolves once it is over and a
   * slot is free again (woken sleepers go before new claims), with the attempt's time limit
   * restarted. Rejects with the abort reason when the attempt aborts or ends meanwhile.
   */
  sleepInMemory(attempt: RunningAttempt, wakeAt: number): Promise<void> {
    const { clock } = this.deps
    const signal = attempt.controller.signal
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle | undefined
      let ready: (() => void) | undefined
      const cleanup = () => {
        if (timer) clock.clearTimeout(timer)
        if (ready) {
          const i = this.readySleepers.indexOf(ready)
          if (i !== -1) this.readySleepers.splice(i, 1)
        }
        signal.removeEventListener('abort', cancel)
        attempt.sleepers.delete(cancel)
      }
      const cancel = () => {
        cleanup()
        reject(
          (signal.reason as Error | undefined) ?? new Error('the attempt ended during an in-memory sleep'),
        )
      }
      const resume = () => {
        cleanup()
        this.takeSlot(attempt)
        this.armAttemptTimer(attempt, clock.now())
        resolve()
      }
      if (signal.aborted || attempt.finished) return cancel()
      signal.addEventListener('abort', cancel, { once: true })
      attempt.sleepers.add(cancel)
      this.freeSlot(attempt)
      timer = clock.setTimeout(
        () => {
          timer = undefined
          if (this.busySlots < this.concurrency) return resume()
          this.readySleepers.push((ready = resume))
        },
        Math.max(0, wakeAt - clock.now()),
      )
    })
  }

  /**
   * @internal The run has nothing left in flight but durable waits: it is dropped (the next
   * attempt replays it), and `ctx.signal` aborts with a `SuspendedError` so that code it still
   * runs outside a step (a fetch started between steps) stops instead of running on, unwatched,
   * beside the replay. Its result, if any, is discarded (the attempt is finished).
   */
  onPark(attempt: RunningAttempt, runAt: number): void {
    if (attempt.finished) return
    this.finish(attempt)
    this.abortRun(attempt, new SuspendedError())
    const wakeAt = attempt.row.deadlineAt === null ? runAt : Math.min(runAt, attempt.row.deadlineAt)
    attempt.logger.debug({ wakeAt }, 'execution parked')
    this.queueSettlement(attempt, {
      transition: 'park',
      id: attempt.row.id,
      run: attempt.row.runs,
      runAt: wakeAt,
    })
    this.freeSlot(attempt)
  }

  private settleFailure(attempt: RunningAttempt, error: unknown): void {
    this.queueSettlement(attempt, this.failureSettlement(attempt, error))
  }

  /** The settlement of a failed attempt: a retry after back-off, or the end (failed or timed_out). */
  private failureSettlement(attempt: RunningAttempt, error: unknown): Settlement {
    const { row } = attempt
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
      this.deps.clock.clearTimeout(attempt.timer)
      attempt.timer = undefined
    }
  }

  /** Frees the attempt's slot. */
  private release(attempt: RunningAttempt): void {
    if (attempt.released) return
    attempt.released = true
    if (this.inFlight.get(attempt.row.id) === attempt) this.inFlight.delete(attempt.row.id)
    this.freeSlot(attempt)
    this.unrecorded.delete(attempt)
    attempt.resolveDone()
  }

  // ── writing results (group commit) ───────────────────────────────────────────────────

  /** @internal */
  queueStepWrite(attempt: RunningAttempt, write: StepWrite, behind = false): Promise<void> {
    if (attempt.finished) return Promise.reject(new StaleAttemptError(write.step.name))
    return new Promise((resolve, reject) => {
      this.pendingSteps.push({ write, resolve, reject, behind, queuedAt: this.deps.clock.now() })
      this.scheduleFlush()
    })
  }

  private queueSettlement(attempt: RunningAttempt, settlement: Settlement): void {
    this.pending.push({ settlement: this.linkFamily(attempt, settlement), attempt })
    this.scheduleFlush()
  }

  /**
   * Adds what a settlement owes the execution's family: the parent awaiting it is woken when it
   * ends (and, when this process knows where the parent recorded it, its outcome is recorded
   * there), and the children it awaited that are still running end with it. Only an execution
   * that started children in this attempt, or ran before (a resume: children of earlier
   * attempts), may have any; a first attempt without children skips the lookup.
   */
  private linkFamily(attempt: RunningAttempt, settlement: Settlement): Settlement {
    const { row } = attempt
    const ends = ENDS[settlement.transition]
    if (row.wakesParent === 1 && row.parentId !== null) {
      settlement.wakeParentId = row.parentId
      const at = ends ? this.awaitedAt.get(row.id) : undefined
      const outcome =
        at &&
        childOutcome({
          id: row.id,
          status: SETTLED_STATUS[settlement.transition],
          output: settlement.transition === 'complete' ? settlement.output : null,
          error: 'error' in settlement ? settlement.error : null,
        })
      if (at && outcome) settlement.parentRecord = { ...at, outcome }
    }
    if ((ends || settlement.transition === 'continue') && (attempt.startedChildren || row.runs > 1))
      settlement.cancelChildren = { error: PARENT_ENDED_ERROR }
    return settlement
  }

  /**
   * @internal The executions were rerun (`executions.retry`): their next end is not recorded in
   * their parents' records by their settlements. A parent may be running on a record it loaded
   * while the child had ended before (a cancel, a deadline, a lost budget, which write nothing
   * there) and be about to consume that end: its own write must be the one that lands, or the
   * record would say what its run did not see. The parent's run records the child's next end.
   */
  forgetAwaited(ids: Iterable<string>): void {
    for (const id of ids) this.awaitedAt.delete(id)
  }

  private noteAwaited(write: StepWrite): void {
    if (write.child === undefined || write.step.kind !== 'child') return
    if (this.awaitedAt.size >= MAX_AWAITED_CHILDREN) {
      const oldest = this.awaitedAt.keys().next()
      if (!oldest.done) this.awaitedAt.delete(oldest.value)
    }
    this.awaitedAt.set(write.child.id, { parentId: write.executionId, position: write.step.position })
  }

  /**
   * Executions the storage cancelled as a consequence of another write (a subtree cancel, a
   * parent that ended): their attempts running here see `ctx.signal` abort at once, and
   * watchers see them cancelled.
   */
  reportCancelled(cancelled: readonly CancelledExecution[], reason: Error, now: number): void {
    for (const c of cancelled) {
      if (c.cancelledFrom === 'running') this.abortAttempt(c.id, reason)
      this.deps.changes.emit({ id: c.id, taskId: c.taskId, status: 'cancelled', run: c.run, at: now })
    }
    if (cancelled.length > 0) this.wake()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return
    this.flushScheduled = true
    defer(() => {
      this.flushScheduled = false
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined))
    })
  }

  private async flushNow(): Promise<void> {
    while (this.flushing || this.pending.length > 0 || this.pendingSteps.length > 0) {
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined))
      await this.flushing
    }
  }

  private async flush(): Promise<void> {
    let first = true
    while (this.pending.length > 0 || this.pendingSteps.length > 0) {
      // Between chunks, let timers, claims and I/O run: one synchronous SQLite transaction of
      // thousands of writes would hold the event loop for hundreds of milliseconds.
      if (!first) await new Promise<void>((resolve) => defer(resolve))
      first = false
      if (this.pendingSteps.length > 0) await this.flushStepWrites()
      const batch = this.takeReadySettlements()
      if (batch.length === 0) continue
      const now = this.deps.clock.now()
      const { applied, cancelled } = await this.writeSettlements(
        batch.map((b) => b.settlement),
        now,
      )
      batch.forEach(({ settlement, attempt }, i) => {
        this.release(attempt)
        if (applied[i] && settlement.parentRecord) this.awaitedAt.delete(settlement.id)
        if (applied[i]) this.reportSettled(attempt, settlement, now)
        else {
          attempt.logger.debug({ transition: settlement.transition }, 'stale attempt result ignored (fenced)')
          this.observer?.attemptEnded?.(attempt.info, 'aborted', now - attempt.startedAt)
        }
      })
      this.reportCancelled(cancelled, new ParentEndedError(), now)
      // Freed slots are refilled between chunks, not only after the whole backlog is written.
      this.schedulePump()
    }
    this.schedulePump()
  }

  /**
   * Up to MAX_WRITES_PER_FLUSH queued step records. When there are more, executions with the
   * fewest queued records go first (each execution's records stay in order): a loop's one
   * checkpoint is not held up behind a fan-out writing thousands of children. Once the oldest
   * record has waited MAX_WRITE_DELAY_MS, the backlog is written in order instead, so a large
   * fan-out is never put off for good by a stream of small writers.
   */
  private takeStepWrites(): PendingStepWrite[] {
    const oldest = this.pendingSteps[0]
    if (
      this.pendingSteps.length <= MAX_WRITES_PER_FLUSH ||
      (oldest && this.deps.clock.now() - oldest.queuedAt >= MAX_WRITE_DELAY_MS)
    ) {
      if (this.pendingSteps.length > MAX_WRITES_PER_FLUSH)
        return this.pendingSteps.splice(0, MAX_WRITES_PER_FLUSH)
      const all = this.pendingSteps
      this.pendingSteps = []
      return all
    }
    const byExecution = new Map<string, PendingStepWrite[]>()
    for (const entry of this.pendingSteps) {
      const list = byExecution.get(entry.write.executionId)
      if (list) list.push(entry)
      else byExecution.set(entry.write.executionId, [entry])
    }
    const ordered = [...byExecution.values()].sort((a, b) => a.length - b.length).flat()
    this.pendingSteps = ordered.slice(MAX_WRITES_PER_FLUSH)
    return ordered.slice(0, MAX_WRITES_PER_FLUSH)
  }

  /**
   * Up to MAX_WRITES_PER_FLUSH queued settlements whose execution has no step record still
   * queued: a run settles only after the records it made are written (a park right after
   * starting children must not commit before the children exist).
   */
  private takeReadySettlements(): { settlement: Settlement; attempt: RunningAttempt }[] {
    if (this.pending.length === 0) return []
    let ready: { settlement: Settlement; attempt: RunningAttempt }[]
    if (this.pendingSteps.length === 0) {
      ready = this.pending.splice(0, MAX_WRITES_PER_FLUSH)
    } else {
      const blocked = new Set(this.pendingSteps.map((p) => p.write.executionId))
      ready = []
      const rest: { settlement: Settlement; attempt: RunningAttempt }[] = []
      for (const entry of this.pending) {
        if (ready.length < MAX_WRITES_PER_FLUSH && !blocked.has(entry.settlement.id)) ready.push(entry)
        else rest.push(entry)
      }
      this.pending = rest
    }
    if (this.unrecorded.size > 0) {
      for (const entry of ready) {
        const error = this.unrecorded.get(entry.attempt)
        if (error === undefined) continue
        this.unrecorded.delete(entry.attempt)
        // A wait's record was not written: parking would wait for something never recorded.
        if (entry.settlement.transition === 'park')
          entry.settlement = this.linkFamily(entry.attempt, this.failureSettlement(entry.attempt, error))
      }
    }
    return ready
  }

  /**
   * Writes a batch in one transaction. If it fails, each settlement is written alone, so one
   * bad result never costs the others theirs; one that still fails is logged and left to
   * lease recovery (a new run).
   */
  private async writeSettlements(settlements: Settlement[], now: number): Promise<SettleOutcome> {
    try {
      const outcome = await this.deps.storage.settle(settlements, now)
      this.failure = undefined
      return outcome
    } catch (error) {
      this.storageFailed('settle', error)
      if (settlements.length === 1) {
        this.deps.logger.error(
          { err: serializeError(error), executionId: settlements[0]!.id },
          'writing an attempt result failed',
        )
        return { applied: [false], cancelled: [] }
      }
      const outcome: SettleOutcome = { applied: [], cancelled: [] }
      for (const settlement of settlements) {
        const one = await this.writeSettlements([settlement], now)
        outcome.applied.push(...one.applied)
        outcome.cancelled.push(...one.cancelled)
      }
      return outcome
    }
  }

  /**
   * Writes a chunk of step records in one transaction. If it fails, each record is written
   * alone, in order, as settlements are: one record the storage refuses fails only the run
   * that made it, never the others of its chunk.
   */
  private async writeSteps(batch: readonly PendingStepWrite[]): Promise<(StepWriteResult | Failed)[]> {
    try {
      const results = await this.deps.storage.recordSteps(
        batch.map((b) => b.write),
        this.deps.clock.now(),
      )
      this.failure = undefined
      return results
    } catch (error) {
      this.storageFailed('record_steps', error)
      if (batch.length === 1) return [{ failed: error }]
      const results: (StepWriteResult | Failed)[] = []
      for (const b of batch) results.push(...(await this.writeSteps([b])))
      return results
    }
  }

  private async flushStepWrites(): Promise<void> {
    const batch = this.takeStepWrites()
    const applied = await this.writeSteps(batch)
    batch.forEach((b, i) => {
      const result = applied[i]!
      if (typeof result === 'object') {
        this.noteUnrecorded(b, result.failed)
        return b.reject(result.failed)
      }
      if (result === 'written') {
        if (b.write.child) this.observer?.enqueued?.(b.write.child, true)
        this.noteAwaited(b.write)
        return b.resolve()
      }
      if (result === 'superseded') {
        // Completed from outside since this attempt read it: retry, and the replay sees it.
        const error = new RetryableError(`step "${b.write.step.name}" was completed from outside meanwhile`, {
          retryAfterMs: 0,
        })
        this.noteUnrecorded(b, error)
        return b.reject(error)
      }
      if (result === 'conflict') {
        const error = new ConflictError(
          `wakeup key "${b.write.step.wakeupKey}" of wait "${b.write.step.name}" is already used by another wait`,
        )
        this.noteUnrecorded(b, error)
        return b.reject(error)
      }
      b.reject(new StaleAttemptError(b.write.step.name))
      // The attempt lost its lease or was cancelled: stop it here.
      const attempt = this.inFlight.get(b.write.executionId)
      if (attempt?.row.runs === b.write.run)
        this.abortAttempt(b.write.executionId, new StaleAttemptError(b.write.step.name))
    })
  }

  /**
   * Remembers that a write-behind record of this attempt was not written, so its park becomes
   * a failure. An awaited write's failure reached the run itself, which may have handled it.
   */
  private noteUnrecorded(entry: PendingStepWrite, error: unknown): void {
    if (!entry.behind) return
    const { write } = entry
    const attempt = this.inFlight.get(write.executionId)
    if (attempt?.row.runs === write.run && !this.unrecorded.has(attempt)) this.unrecorded.set(attempt, error)
  }

  private reportSettled(attempt: RunningAttempt, settlement: Settlement, now: number): void {
    const status = SETTLED_STATUS[settlement.transition]
    const { row } = attempt
    this.deps.changes.emit({ id: row.id, taskId: row.taskId, status, run: row.runs, at: now })
    const durationMs = now - attempt.startedAt
    this.observer?.attemptEnded?.(attempt.info, OUTCOME[settlement.transition], durationMs)
    if (settlement.transition === 'complete') attempt.logger.info({ durationMs }, 'execution completed')
    else if (settlement.transition === 'fail' || settlement.transition === 'time_out') {
      attempt.logger.error(
        { durationMs, status, err: JSON.parse(settlement.error) as unknown },
        `execution ${status}`,
      )
    }
  }

  // ── leases ────────────────────────────────────────────────────────────────────────────

  /**
   * Recovers runs lost to a crash: leases that expired, and with `everyOtherOwner` (single
   * writer, at start-up) every lease but ours. A lost run is not a failed attempt; the
   * recovery budget (`maxRecoveries`) ends an execution that keeps losing its runs.
   */
  private async recover(everyOtherOwner: boolean): Promise<void> {
    try {
      const now = this.deps.clock.now()
      const recovered = await this.deps.storage.recoverLeases({
        now,
        error: LEASE_EXPIRED_ERROR,
        exhaustedError: (maxRecoveries) => stackless(new RecoveriesExhaustedError(maxRecoveries)),
        cancelChildrenError: PARENT_ENDED_ERROR,
        limit: 1000,
        ...(everyOtherOwner ? { everyOwnerBut: this.workerId } : {}),
      })
      this.failure = undefined
      for (const r of recovered) {
        this.observer?.recovered?.(r.taskId, r.status)
        const facts = {
          executionId: r.id,
          taskId: r.taskId,
          lostRun: r.run,
          progressed: r.progressed,
          recoveries: r.recoveries,
          maxRecoveries: r.maxRecoveries,
        }
        if (r.status === 'queued')
          this.deps.logger.warn(facts, 'recovered a run lost to a crash (lease expired)')
        else
          this.deps.logger.error(
            { ...facts, code: 'RECOVERIES_EXHAUSTED' },
            'execution failed: it lost more runs in a row to crashes than maxRecoveries allows',
          )
        this.deps.changes.emit({ id: r.id, taskId: r.taskId, status: r.status, run: r.run, at: now })
        this.reportCancelled(r.cancelledChildren, new ParentEndedError(), now)
      }
    } catch (error) {
      this.storageFailed('recover_leases', error)
      this.deps.logger.error({ err: serializeError(error) }, 'lease recovery failed')
    }
  }

  private armPoll(): void {
    this.pollTimer = this.deps.clock.setTimeout(() => {
      if (this.state !== 'running') return
      void this.recover(false).then(() => {
        // The pump housekeeps even when every slot is busy and it claims nothing.
        this.housekeepDue = true
        this.schedulePump()
        if (this.state === 'running') this.armPoll()
      })
    }, this.pollIntervalMs)
  }

  private armHeartbeat(): void {
    this.heartbeatTimer = this.deps.clock.setTimeout(() => {
      void this.heartbeat().then(() => {
        if (this.state === 'running' || this.state === 'draining') this.armHeartbeat()
      })
    }, this.heartbeatMs)
  }

  private async heartbeat(): Promise<void> {
    const leases: RunRef[] = []
    // Finished attempts too: a park or result queued behind a long backlog keeps its lease
    // until it is written (a fenced write after a recovery would lose the result).
    for (const a of this.inFlight.values()) leases.push({ id: a.row.id, run: a.row.runs })
    if (leases.length === 0) return
    try {
      const lost = await this.deps.storage.extendLeases(
        this.workerId,
        leases,
        this.deps.clock.now(),
        this.leaseMs,
      )
      this.failure = undefined
      for (const ref of lost) {
        const attempt = this.inFlight.get(ref.id)
        if (attempt?.row.runs === ref.run) {
          this.abortAttempt(
            ref.id,
            new LeaseExpiredError('this worker no longer holds the lease (cancelled or recovered elsewhere)'),
          )
        }
      }
    } catch (error) {
      this.storageFailed('extend_leases', error)
      this.deps.logger.error({ err: serializeError(error) }, 'lease heartbeat failed')
    }
  }

  private clearTimer(name: 'dueTimer' | 'pollTimer' | 'heartbeatTimer'): void {
    const handle = this[name]
    if (handle) this.deps.clock.clearTimeout(handle)
    this[name] = undefined
    if (name === 'dueTimer') this.dueAt = undefined
  }
}

/**
 * What a RunContext may ask of the executor for one attempt. A class rather than an object
 * of closures: one is made per attempt, on the hot path.
 */
class ExecutorHost implements AttemptHost {
  private inbox: Promise<SignalRow[]> | undefined

  constructor(
    private readonly executor: Executor,
    private readonly attempt: RunningAttempt,
  ) {
    const observer = executor.observer
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
    return this.executor.maxPayloadBytes
  }

  now(): number {
    return this.executor.deps.clock.now()
  }

  /** The first claim of an execution has no record yet: no read. */
  loadState(): Promise<RunState> {
    const { row } = this.attempt
    return (this.attempt.state ??=
      row.runs === 1 ? Promise.resolve(EMPTY_RUN_STATE) : this.executor.deps.storage.loadRunState(row.id))
  }

  /** A first attempt skips the record, not the inbox: signals may have come before it started. */
  loadInbox(): Promise<SignalRow[]> {
    const { row } = this.attempt
    if (row.runs !== 1) return this.loadState().then((state) => state.inbox)
    return (this.inbox ??= this.executor.deps.storage.loadRunState(row.id).then((state) => state.inbox))
  }

  record(write: Omit<StepWrite, 'executionId' | 'run'>, options: { behind?: boolean } = {}): Promise<void> {
    const { row } = this.attempt
    return this.executor.queueStepWrite(
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
    const { registry, clock } = this.executor.deps
    if (wakesParent) this.attempt.startedChildren = true
    return prepareExecution(registry, { task, input, options }, clock.now(), this.executor.maxPayloadBytes, {
      parentId: row.id,
      rootId: row.rootId ?? row.id,
      wakesParent,
      deadlineAt: row.deadlineAt,
    })
  }

  park(runAt: number): void {
    this.executor.onPark(this.attempt, runAt)
  }

  canSleepInMemory(wakeAt: number): boolean {
    return this.executor.canSleepInMemory(this.attempt, wakeAt)
  }

  sleepInMemory(wakeAt: number): Promise<void> {
    return this.executor.sleepInMemory(this.attempt, wakeAt)
  }

  poison(error: Error): void {
    this.executor.onThrow(this.attempt, error)
  }

  random(): number {
    return this.executor.random()
  }

  delay(ms: number): Promise<void> {
    const { clock } = this.executor.deps
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

/** A step write of an attempt that no longer holds its execution (cancelled, lease lost). */
class StaleAttemptError extends RatchetError {
  constructor(step: string) {
    super('STALE_ATTEMPT', `step "${step}" was not recorded: this attempt no longer holds the execution`, {
      retryable: false,
    })
  }
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`${name} must be a positive integer, got ${String(value)}`)
  return value
}
