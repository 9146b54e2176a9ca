import type { Attempts } from './attempt-lifecycle'
import type { TimerHandle } from './clock'
import { defer } from './defer'
import type { ExecutorContext } from './executor-context'
import type { StorageOperation } from './observer'
import type { Slots } from './slots'
import { isStorageUnavailable, StorageRetry } from './storage-health'
import type { ExecutionRow } from './storage'

/** Most executions one housekeep call changes; a larger backlog takes several (see `housekeep`). */
const HOUSEKEEP_BATCH = 1000
/** Another process was housekeeping (`busy`): try again after this long rather than spin. */
const HOUSEKEEP_BUSY_RETRY_MS = 100

/**
 * @internal The claim loop (the "pump"). It housekeeps first when that is due, then claims as
 * many due executions as there are free slots, starts them, and when nothing more is due arms
 * the one due timer for the next due time (`Storage.nextDueAt`). A pump is scheduled (at most
 * one at a time, coalesced to the end of the event-loop turn) by `wake()`, a freed slot, a
 * written result, the due timer and the safety-net poll; one that arrives while the loop runs
 * makes it go round again.
 */
export class ClaimLoop {
  private ids: { version: number; ids: string[] } = { version: -1, ids: [] }
  private pumpScheduled = false
  /** The scheduled pass is for a wake-up (see `pumpSoon`). */
  private scheduledWake = false
  /** Slots were freed while the pass ran. */
  private slotsAgain = false
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
  /** The storage was unreachable: the pass is tried again after a back-off, not at the next poll. */
  private readonly retry: StorageRetry
  /** Wake-ups so far (`schedule` calls): anything may have become claimable at each. */
  private wakes = 0
  /**
   * `wakes` when a claim that began then came back short (fewer rows than asked): nothing was
   * left to claim as of that wake-up. Until the next one, a freed slot needs no claim.
   */
  private drainedAt = -1

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly settings: { leaseMs: number; pollIntervalMs: number; random: () => number },
    private readonly slots: Slots,
    private readonly attempts: Attempts,
  ) {
    this.retry = new StorageRetry(
      ctx.deps.clock,
      { maxMs: settings.pollIntervalMs, random: settings.random },
      () => this.housekeepSoon(),
    )
    ctx.health.onRecovered(() => this.retryNow())
  }

  /** The tasks this process runs; the registry can grow while it runs (`Engine.refreshTasks`). */
  private get taskIds(): string[] {
    const { registry } = this.ctx.deps
    if (this.ids.version !== registry.version) this.ids = { version: registry.version, ids: registry.ids() }
    return this.ids.ids
  }

  /** The storage is back (a call succeeded, or the notification connection came back): no wait. */
  retryNow(): void {
    this.retry.fireNow()
  }

  /**
   * Slots free for claiming. An attempt whose result (or park) is queued runs no code, so it
   * frees its slot at once: the next claim overlaps with the write (a fan-out's slot is not
   * held while its children are written); so does one in an in-memory sleep, which gets a slot
   * back before any new claim when it wakes. Claiming pauses while the queue of unwritten
   * records is long, and while `concurrency` results wait beside the ones being written
   * (2 × concurrency unwritten): that bounds the executions this process holds to three times
   * its concurrency, and the backlog's memory.
   */
  freeSlots(): number {
    const { writes } = this.attempts
    if (writes.backlogFull) return 0
    return Math.min(this.slots.free(), 2 * this.slots.concurrency - writes.unwrittenResults)
  }

  /**
   * Runs the loop soon (once, at the end of this event-loop turn) while the executor runs.
   * While the storage is unreachable, only the back-off's retry runs it.
   */
  schedule(): void {
    this.wakes++
    this.pumpSoon(true)
  }

  /**
   * Slots were freed (a run ended; its result was written): claim again, unless the last claim
   * came back short and nothing has woken the loop since, so that a claim would find nothing
   * (a run that ends does not make anything claimable by itself). `mayHaveWoken`: the writes
   * may have made executions claimable (a retry, a release, a park woken meanwhile, a child's
   * result for its parent, new children): claim as after a wake-up.
   */
  slotsFreed(mayHaveWoken = false): void {
    if (mayHaveWoken) return this.schedule()
    if (this.drainedAt !== this.wakes) this.pumpSoon(false)
  }

  /** `wake`: for a wake-up (a pass already running goes round again), not only freed slots. */
  private pumpSoon(wake: boolean): void {
    this.scheduledWake ||= wake
    if (this.ctx.state !== 'running' || this.pumpScheduled || this.retry.armed) return
    this.pumpScheduled = true
    defer(() => {
      const woken = this.scheduledWake
      this.pumpScheduled = false
      this.scheduledWake = false
      void this.pump(woken)
    })
  }

  /** Something becomes due at `at`: see `Executor.wakeAt`. */
  becomesDue(at: number): void {
    if (this.ctx.state !== 'running') return
    // A pass in progress may be reading the next due time from before this execution was
    // written, and would then disarm the timer armed here: it goes round again instead.
    if (at <= this.ctx.deps.clock.now() || this.pumping) return this.schedule()
    this.armDueTimerAt(at)
  }

  /** The safety-net poll: housekeep on the next pass, even if no slot is free. */
  housekeepSoon(): void {
    this.housekeepDue = true
    this.schedule()
  }

  /** The pass in progress, if any (a drain waits for it: its claimed rows are ours). */
  get inProgress(): Promise<void> | undefined {
    return this.pumping
  }

  /** Disarms the due timer and a pending retry (the executor is stopping). */
  stop(): void {
    this.disarmDueTimer()
    this.retry.cancel()
  }

  private disarmDueTimer(): void {
    if (this.dueTimer) this.ctx.deps.clock.clearTimeout(this.dueTimer)
    this.dueTimer = undefined
    this.dueAt = undefined
  }

  private pump(wake: boolean): Promise<void> {
    if (this.pumping) {
      // Slots freed while a pass runs need it to go round again only when its claim came back
      // full (then it does anyway) or after a wake-up: see `slotsFreed`.
      if (wake) this.claimAgain = true
      else this.slotsAgain = true
      return this.pumping
    }
    this.slotsAgain = false
    this.pumping = this.loop().finally(() => {
      this.pumping = undefined
      // a wake() that arrived after the loop's last check must not be lost
      if (this.claimAgain) this.schedule()
      else if (this.slotsAgain && this.drainedAt !== this.wakes) this.pumpSoon(false)
    })
    return this.pumping
  }

  private async loop(): Promise<void> {
    let operation: StorageOperation = 'claim'
    try {
      for (;;) {
        this.claimAgain = false
        if (this.ctx.state !== 'running') return
        // Before the slots are counted: deadlines expire and waiters wake even when all are busy.
        if (this.housekeepDue) {
          operation = 'housekeep'
          await this.housekeep()
          operation = 'claim'
        }
        const limit = this.freeSlots()
        if (limit <= 0) return // a flush pumps again when slots free up
        const wakes = this.wakes
        const { rows, drained } = await this.claim(limit)
        this.drainedAt = drained ? wakes : -1
        for (const row of rows) this.attempts.start(row)
        if (rows.length === limit || this.claimAgain) continue
        await this.armDueTimer()
        if (!this.claimAgain) return
      }
    } catch (error) {
      const what =
        operation === 'claim'
          ? 'claim (or reading the next due time)'
          : 'waking due waiters and expiring deadlines'
      if (!isStorageUnavailable(error)) {
        this.ctx.health.failed(operation, error, `${what} failed; retrying after the poll interval`)
        return
      }
      // Unreachable: try again soon, backing off to the poll interval; wake-ups wait for it.
      if (this.ctx.state !== 'running') return this.ctx.health.failed(operation, error, `${what} failed`)
      const delayMs = this.retry.arm()
      this.ctx.health.failed(operation, error, `${what} failed; retrying in ${delayMs} ms`)
    }
  }

  /**
   * Does the timers' work due now (`Storage.housekeep`), in batches while the storage says
   * there is more, letting timers and I/O run between batches. Every change goes to the change
   * feed at once: a deadline that expires a waiting or queued execution reaches its watchers
   * and waiters like any other change. When another process is at it (`busy`), the due timer
   * tries again in HOUSEKEEP_BUSY_RETRY_MS. Throws what the storage throws.
   */
  async housekeep(): Promise<void> {
    const { deps } = this.ctx
    this.housekeepDue = false
    for (let first = true; ; first = false) {
      if (!first) await new Promise<void>((resolve) => defer(resolve))
      const now = deps.clock.now()
      const { changed, more, busy } = await deps.storage.housekeep(now, HOUSEKEEP_BATCH)
      this.ctx.health.ok()
      this.retry.reset()
      if (busy) {
        this.housekeepBusyUntil = now + HOUSEKEEP_BUSY_RETRY_MS
        if (this.ctx.state === 'running') this.armDueTimerAt(this.housekeepBusyUntil)
        return
      }
      for (const change of changed) {
        if (change.to === 'timed_out') {
          deps.logger.warn(
            { executionId: change.id, taskId: change.taskId, from: change.from },
            'execution timed_out: past its deadline',
          )
        }
        deps.changes.emit({
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

  /**
   * Claims up to `limit` due executions; each claim goes to the change feed at once. `drained`:
   * see `ClaimOutcome`.
   */
  async claim(limit: number): Promise<{ rows: ExecutionRow[]; drained: boolean }> {
    if (this.taskIds.length === 0) return { rows: [], drained: true }
    const { deps } = this.ctx
    const now = deps.clock.now()
    const { claimed, drained } = await deps.storage.claim({
      owner: this.ctx.workerId,
      now,
      leaseMs: this.settings.leaseMs,
      limit,
      taskIds: this.taskIds,
    })
    this.ctx.health.ok()
    this.retry.reset()
    for (const row of claimed) {
      deps.changes.emit({
        id: row.id,
        taskId: row.taskId,
        status: 'running',
        run: row.runs,
        at: now,
      })
    }
    return { rows: claimed, drained }
  }

  /**
   * One timer for the next due time (`Storage.nextDueAt`: a delayed or retried execution, a
   * sleep's end, a wait's timeout, a deadline), so they all happen on time without polling.
   * Already passed: housekeep and claim again at once, unless another process is housekeeping
   * (then the busy retry's timer is armed and is left to fire).
   */
  private async armDueTimer(): Promise<void> {
    const next = await this.ctx.deps.storage.nextDueAt(this.taskIds)
    // stop() may have begun while the query ran: arm nothing then.
    if (this.ctx.state !== 'running') return
    if (next === null) {
      this.disarmDueTimer()
      return
    }
    const now = this.ctx.deps.clock.now()
    if (next > now) return this.armDueTimerAt(next)
    if (now < this.housekeepBusyUntil) return this.armDueTimerAt(this.housekeepBusyUntil)
    this.housekeepDue = true
    this.claimAgain = true
  }

  /** Arms the due timer for `at`, unless it is already armed for then or sooner. */
  private armDueTimerAt(at: number): void {
    if (this.dueTimer && this.dueAt !== undefined && this.dueAt <= at) return
    this.disarmDueTimer()
    this.dueAt = at
    this.dueTimer = this.ctx.deps.clock.setTimeout(() => {
      this.dueTimer = undefined
      this.dueAt = undefined
      this.housekeepSoon()
    }, at - this.ctx.deps.clock.now())
  }
}
