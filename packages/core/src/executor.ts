import { Attempts } from './attempt-lifecycle'
import { ClaimLoop } from './claim-loop'
import type { TimerHandle } from './clock'
import type { ExecutorContext, ExecutorDeps, ExecutorState } from './executor-context'
import { Leases } from './leases'
import type { AttemptInfo, ExecutionObserver } from './observer'
import { Slots } from './slots'
import { isStorageUnavailable, StorageHealth, type StorageFailure } from './storage-health'
import type { CancelledExecution } from './storage'

/**
 * The executor: claims due executions, runs their attempts, writes their results. This file
 * holds its options, its life (the state graph below) and its public face; the work is done by
 * its parts, each in its own file:
 * - claim-loop.ts: the claim loop ("pump") and the due timer; slots.ts: the `concurrency` slots;
 * - attempt-lifecycle.ts: an attempt from claim to result (attempt.ts: its shape;
 *   attempt-host.ts: what its `ctx` asks of the executor; in-memory-sleep.ts: short sleeps);
 * - write-behind.ts: the group commit of step records and results (family.ts: what a result
 *   owes the parent and children; step-write-results.ts: what each record's outcome means for
 *   its run; settled-results.ts: what a written result tells the feed, the observer and the log);
 * - leases.ts: heartbeats, lease recovery and the safety-net poll;
 * - storage-health.ts: whether the storage calls fail (for readiness), the outage log and
 *   the retry back-off.
 *
 * Terminology.
 * - pump: one claim loop. It housekeeps first when that is due, then claims as many due
 *   executions as there are free slots, starts them, and when nothing more is due arms one
 *   timer for the next due time (`Storage.nextDueAt`).
 * - housekeeping: the timers' work kept out of the claim (`Storage.housekeep`): waiters whose
 *   time came are queued again, executions past their deadline time out. Due when the due
 *   timer fires, on the safety-net poll, and when the next due time has already passed.
 * - flush: writes every settlement produced since the last flush in one storage call
 *   (group commit), then frees those slots and pumps again.
 * - slot: an attempt counts against `concurrency` from its claim until it parks or ends (its
 *   result may still be queued: claiming pauses at 2 × concurrency unwritten results) or is
 *   abandoned; and not while it is in an in-memory short sleep (it takes a slot back, before
 *   any new claim, to go on).
 *
 * Wake-ups are pushed, never polled on the hot path: `wake()` (enqueue, cancel), a flush, or
 * the next-due timer start a pump. A slow safety-net poll (`pollIntervalMs`) also recovers
 * expired leases and housekeeps.
 *
 * States (`ExecutorState`):
 *
 *     idle ──start()──▶ running ──stop()──▶ draining ──every result written (or given up)──▶ stopped
 *       └──────────────────stop()─────────────▲
 *
 * - idle: nothing runs by itself; `tick()` steps it (recover, housekeep, claim, run, write).
 * - running: wake-ups pump; every timer below is armed as needed.
 * - draining: nothing is claimed (the due timer and the poll are cleared, the pump refuses);
 *   running attempts go on for up to `drainMs` under their heartbeat, then the rest are
 *   released (queued again at once); the write-behind writes everything queued, or, while
 *   the storage is unreachable, gives up one lease after `stop()` (lease recovery runs those).
 * - stopped: final. No timer is left armed.
 *
 * Timers (all through the `Clock` port):
 * - due timer (claim-loop.ts), one: at the next due time, or when a housekeeping another
 *   process held (`busy`) should be tried again; fires → housekeep, then claim.
 * - poll (leases.ts), every `pollIntervalMs` while running: recover expired leases, then
 *   housekeep and claim. A safety net: nothing on the hot path waits for it.
 * - heartbeat (leases.ts), every `heartbeatMs` while running or draining: extends the leases of
 *   this process's attempts; aborts an attempt whose lease is gone.
 * - attempt timer (attempt-lifecycle.ts), one per attempt: its timeout or deadline, whichever
 *   comes first; fires → the attempt fails (`TimeoutError`, `DeadlineExceededError`), or is
 *   released when its timeout passes while the storage is unreachable.
 * - in-memory sleep (in-memory-sleep.ts), one per short sleep; fires → resumes when a slot is free.
 * - drain deadline (here), `drainMs` after `stop()`; fires → the rest are released.
 * - retry timers (claim-loop.ts, write-behind.ts), one each while the storage is unreachable:
 *   100 ms doubling to `pollIntervalMs`; fire → claim or write again. The first success (or
 *   the notification connection coming back) fires them at once.
 */
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

export class Executor implements ExecutorContext {
  readonly workerId: string
  /** @internal */
  readonly observer: ExecutionObserver | undefined
  /** @internal */
  readonly health: StorageHealth
  private current: ExecutorState = 'idle'
  private readonly attempts: Attempts
  private readonly claims: ClaimLoop
  private readonly leases: Leases
  private stopping: Promise<void> | undefined
  private readonly leaseMs: number
  /** Unsubscribes from the storage's notifications (see `start`). */
  private unlisten: (() => void)[] = []

  constructor(
    /** @internal */
    readonly deps: ExecutorDeps,
    options: ExecutorOptions = {},
  ) {
    const concurrency = positiveInt(options.concurrency ?? 10, 'concurrency')
    const leaseMs = positiveInt(options.leaseMs ?? 30_000, 'leaseMs')
    const heartbeatMs = positiveInt(
      options.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3)),
      'heartbeatMs',
    )
    if (heartbeatMs >= leaseMs) throw new TypeError('heartbeatMs must be shorter than leaseMs')
    const pollIntervalMs = positiveInt(options.pollIntervalMs ?? 5_000, 'pollIntervalMs')
    const claimBatchSize = positiveInt(options.claimBatchSize ?? 100, 'claimBatchSize')
    const shortSleepMs = options.shortSleepMs ?? 1000
    if (!Number.isFinite(shortSleepMs) || shortSleepMs < 0)
      throw new TypeError(`shortSleepMs must be a number >= 0, got ${String(options.shortSleepMs)}`)
    const maxPayloadBytes = positiveInt(options.maxPayloadBytes ?? 1024 * 1024, 'maxPayloadBytes')
    this.leaseMs = leaseMs
    this.workerId = options.workerId ?? `worker-${crypto.randomUUID()}`
    this.observer = options.observer
    this.health = new StorageHealth(deps.clock, deps.logger, this.observer)
    const random = options.random ?? Math.random
    // The parts, each given what it uses. The slots and the attempts reach the claim loop,
    // made after them, through `pump`.
    const pump = () => this.claims.schedule()
    const slots = new Slots(concurrency, claimBatchSize, () => this.claims.slotsFreed())
    this.attempts = new Attempts(
      this,
      {
        shortSleepMs,
        maxPayloadBytes,
        random,
        pollIntervalMs,
        withinAttempt: options.withinAttempt,
      },
      slots,
      pump,
      (mayHaveWoken) => this.claims.slotsFreed(mayHaveWoken),
    )
    this.claims = new ClaimLoop(this, { leaseMs, pollIntervalMs, random }, slots, this.attempts)
    this.leases = new Leases(this, { leaseMs, heartbeatMs, pollIntervalMs }, this.attempts, this.claims)
  }

  /** @internal Where the executor is in its life (see the state graph above). */
  get state(): ExecutorState {
    return this.current
  }

  /**
   * The executor's last failed storage call (a claim, housekeeping, a result or step write, a
   * lease recovery or heartbeat) while none has succeeded since, else `undefined`: the storage
   * is unreachable or refusing writes. A readiness probe reports it. An idle executor notices a
   * failure within `pollIntervalMs` (its safety-net poll reads the storage).
   */
  get storageFailure(): StorageFailure | undefined {
    return this.health.failure
  }

  /** Attempts whose result is not written yet (parks still queued included). */
  get activeAttempts(): number {
    return this.attempts.size
  }

  /** The runs this process is running now (their code may still be in flight), oldest first. */
  runningAttempts(): AttemptInfo[] {
    const running: AttemptInfo[] = []
    for (const attempt of this.attempts.values()) if (!attempt.finished) running.push(attempt.info)
    return running
  }

  /** In-memory short sleeps in progress (see `shortSleepMs`). */
  get inMemorySleeps(): number {
    let n = 0
    for (const a of this.attempts.values()) n += a.sleepers.size
    return n
  }

  get isRunning(): boolean {
    return this.current === 'running'
  }

  /**
   * Starts claiming: recovers leases left by dead processes (at once when the storage is
   * single-writer, else when they expire), then pumps. Throws if already started.
   */
  start(): void {
    if (this.current !== 'idle') throw new Error(`executor cannot start: it is ${this.current}`)
    this.current = 'running'
    // Another replica's enqueue, wake-up or retry made work claimable: claim it now, not at
    // the next poll. When the notification connection comes back, anything may be due.
    const notifications = this.deps.storage.notifications
    if (notifications)
      this.unlisten = [
        notifications.onWake(() => this.claims.schedule()),
        notifications.onConnection((up) => {
          if (!up) return
          this.attempts.writes.retryNow()
          this.claims.retryNow()
          this.claims.housekeepSoon()
        }),
      ]
    this.leases.armPoll()
    this.leases.armHeartbeat()
    void this.leases.recover(this.deps.storage.capabilities.singleWriter).then(() => this.claims.schedule())
  }

  /** Something may be claimable now (an enqueue, a cancel): pump soon. Cheap to call often. */
  wake(): void {
    this.claims.schedule()
  }

  /**
   * Awaits `write`, a storage call that may make executions claimable, and returns or rethrows
   * what it does. When it fails as unreachable it may have committed all the same (the
   * connection dropped during COMMIT), and no other process announces it to this one: the claim
   * loop is woken, as after a success.
   */
  async wakeAfter<T>(write: Promise<T>): Promise<T> {
    try {
      return await write
    } catch (error) {
      if (isStorageUnavailable(error)) this.wake()
      throw error
    }
  }

  /**
   * An execution becomes claimable at `at` (a delayed enqueue): the due timer is armed for then
   * if it is not armed sooner, without a storage call; at or before now, `wake()`. Nothing
   * while the executor is not running (it reads the next due time when it starts).
   */
  wakeAt(at: number): void {
    this.claims.becomesDue(at)
  }

  /**
   * One claim/run/settle pass for tests and scripts, on an executor that was not started:
   * recovers expired leases, housekeeps, claims up to the free slots, runs the claimed attempts
   * and writes their results. Resolves when all of them are settled. Rejects when a
   * housekeeping or claim call of the storage fails.
   */
  async tick(): Promise<{ claimed: number }> {
    if (this.current !== 'idle')
      throw new Error(`tick() steps an executor that was not started; it is ${this.current}`)
    await this.leases.recover(false)
    await this.claims.housekeep()
    const limit = this.claims.freeSlots()
    if (limit <= 0) return { claimed: 0 }
    const { rows } = await this.claims.claim(limit)
    await Promise.all(rows.map((row) => this.attempts.start(row).done))
    return { claimed: rows.length }
  }

  /**
   * Graceful stop: claims nothing more, waits up to `drainMs` for running attempts to
   * finish, then aborts the rest with a `ShutdownError` and releases them (queued again at
   * once; a release does not use up the last attempt). Resolves when every result is written,
   * or, while the storage is unreachable, one lease duration after the call (what is left is
   * logged and left to lease recovery).
   */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopping ??= this.drain(options.drainMs ?? 30_000)
    return this.stopping
  }

  private async drain(drainMs: number): Promise<void> {
    const stoppedAt = this.deps.clock.now()
    this.current = 'draining'
    for (const unlisten of this.unlisten.splice(0)) unlisten()
    this.claims.stop()
    this.leases.stopPoll()
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
    await this.claims.inProgress
    this.claims.stop()
    while (this.attempts.size > 0 && !expired) {
      await Promise.race([Promise.all([...this.attempts.values()].map((a) => a.done)), timeUp])
    }
    if (deadline) this.deps.clock.clearTimeout(deadline)
    this.attempts.releaseAll(drainMs)
    // Unreachable storage: a lease after stop() began, the results would be fenced off anyway.
    await this.attempts.writes.flushNow(Math.max(0, this.leaseMs - (this.deps.clock.now() - stoppedAt)))
    this.leases.stopHeartbeat()
    this.current = 'stopped'
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
    return this.attempts.fail(attempt, error)
  }

  /**
   * Aborts a running attempt of this process without writing anything (the execution was
   * cancelled, or its lease is gone): `ctx.signal` fires with `reason` and the slot is freed.
   * Returns whether an attempt was aborted.
   */
  abortAttempt(executionId: string, reason: Error): boolean {
    return this.attempts.abort(executionId, reason)
  }

  /**
   * Executions the storage cancelled as a consequence of another write (a subtree cancel, a
   * parent that ended): their attempts running here see `ctx.signal` abort at once, and
   * watchers see them cancelled.
   */
  reportCancelled(cancelled: readonly CancelledExecution[], reason: Error, now: number): void {
    this.attempts.reportCancelled(cancelled, reason, now)
  }

  /**
   * @internal The executions were rerun (`executions.retry`): their next end is not recorded in
   * their parents' records by their settlements (see `Family.forget`).
   */
  forgetAwaited(ids: Iterable<string>): void {
    this.attempts.writes.family.forget(ids)
  }
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`${name} must be a positive integer, got ${String(value)}`)
  return value
}
