import type { RunningAttempt } from './attempt'
import { defer } from './defer'
import { ParentEndedError } from './errors'
import type { ExecutorContext } from './executor-context'
import { Family } from './family'
import { plainEnd, reportSettled } from './settled-results'
import {
  deliverStepWriteResult,
  type Failed,
  type PendingStepWrite,
  StaleAttemptError,
  type StepWriteSink,
} from './step-write-results'
import { isStorageUnavailable, StorageRetry } from './storage-health'
import type { CancelledExecution, Settlement, SettleOutcome, StepWrite, StepWriteResult } from './storage'

/**
 * The group commit. Attempts queue their step records and settlements here and go on; a flush,
 * deferred to the end of the event-loop turn, writes everything queued in that turn in one
 * storage call each (step records first, then the settlements they allow), then tells the
 * attempts what landed. A backlog is written in chunks, yielding between them.
 *
 * While the storage is unreachable nothing is dropped: what could not be written stays queued,
 * in order, and the flush is tried again after a back-off (100 ms doubling to the poll
 * interval); runs awaiting a step record just wait. Once leases have expired meanwhile, the
 * writes that finally land are fenced off and lease recovery runs those executions again.
 */

/** Most writes in one storage transaction; a larger backlog is written in chunks. */
const MAX_WRITES_PER_FLUSH = 256
/** A step record queued this long is written before newer ones, whoever they belong to. */
const MAX_WRITE_DELAY_MS = 1_000
/** Claiming pauses while this many step records wait to be written (a memory bound). */
const MAX_PENDING_STEP_WRITES = 10_000

interface PendingSettlement {
  settlement: Settlement
  attempt: RunningAttempt
}

/** @internal What the write-behind needs of the attempts whose writes it makes. */
export interface WriteBehindHost {
  /** This process's attempt of the execution, if it runs one. */
  get(executionId: string): RunningAttempt | undefined
  /** Its result is written (or fenced off, or given up): forget it (its slot is freed already). */
  release(attempt: RunningAttempt): void
  /** Aborts the attempt without writing anything; whether one was aborted. */
  abort(executionId: string, reason: Error): boolean
  /** The settlement of a failed attempt (a retry, or the end). */
  failureSettlement(attempt: RunningAttempt, error: unknown): Settlement
  /** Executions the storage cancelled along with a write. */
  reportCancelled(cancelled: readonly CancelledExecution[], reason: Error, now: number): void
  /**
   * Results were written: slots may have been freed, claim again. `mayHaveWoken`: the writes
   * may have made executions claimable (anything but a run's plain end: see `plainEnd`).
   */
  written(mayHaveWoken: boolean): void
}

/** @internal */
export class WriteBehind {
  readonly family = new Family()
  private pending: PendingSettlement[] = []
  private pendingSteps: PendingStepWrite[] = []
  // Attempts one of whose step records could not be written (see takeReadySettlements).
  private readonly unrecorded = new Map<RunningAttempt, unknown>()
  private flushScheduled = false
  private flushing: Promise<void> | undefined
  /** Settlements in the storage call in progress. */
  private writingSettlements = 0
  /** The storage was unreachable: the next flush waits for this retry. */
  private readonly retry: StorageRetry
  /** Where the outcome of each step record goes (see step-write-results.ts). */
  private readonly stepWriteSink: StepWriteSink = {
    written: (entry) => {
      if (entry.write.child) this.ctx.observer?.enqueued?.(entry.write.child, true)
      this.family.noteAwaited(entry.write)
    },
    unrecorded: (entry, error) => this.noteUnrecorded(entry, error),
    stale: (entry, error) => {
      // The attempt lost its lease or was cancelled: stop it here.
      const attempt = this.host.get(entry.write.executionId)
      if (attempt?.row.runs === entry.write.run) this.host.abort(entry.write.executionId, error)
    },
  }

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly host: WriteBehindHost,
    settings: { pollIntervalMs: number; random: () => number },
  ) {
    this.retry = new StorageRetry(
      ctx.deps.clock,
      { maxMs: settings.pollIntervalMs, random: settings.random },
      () => this.scheduleFlush(),
    )
    ctx.health.onRecovered(() => this.retryNow())
  }

  /**
   * The storage is back (a call succeeded, or the notification connection came back): write
   * what is queued now, before the leases of the runs waiting on it lapse.
   */
  retryNow(): void {
    this.retry.fireNow()
  }

  /** Results queued or being written (their attempts hold leases, not slots). */
  get unwrittenResults(): number {
    return this.pending.length + this.writingSettlements
  }

  /** So many step records wait to be written that claiming pauses (a memory bound). */
  get backlogFull(): boolean {
    return this.pendingSteps.length >= MAX_PENDING_STEP_WRITES
  }

  /**
   * Queues a step record; resolves when it is written, rejects when it is not (stale, refused).
   * `behind`: nobody awaits it, so its failure fails the attempt's park instead.
   */
  queueStepWrite(attempt: RunningAttempt, write: StepWrite, behind = false): Promise<void> {
    if (attempt.finished) return Promise.reject(new StaleAttemptError(write.step.name))
    return new Promise((resolve, reject) => {
      this.pendingSteps.push({ write, resolve, reject, behind, queuedAt: this.ctx.deps.clock.now() })
      this.scheduleFlush()
    })
  }

  /** Queues the attempt's result, with what it owes its family; written after its step records. */
  queueSettlement(attempt: RunningAttempt, settlement: Settlement): void {
    this.pending.push({ settlement: this.family.link(attempt, settlement), attempt })
    this.scheduleFlush()
  }

  /** The attempt is released: nothing of it is pending any more. */
  forget(attempt: RunningAttempt): void {
    this.unrecorded.delete(attempt)
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing || this.retry.armed) return
    this.flushScheduled = true
    defer(() => {
      this.flushScheduled = false
      void this.startFlush()
    })
  }

  /**
   * Starts a flush unless one runs. Work queued after a flush's last look at the queue (while it
   * was finishing) would find `flushing` still set and be left behind: it is picked up here.
   */
  private startFlush(): Promise<void> {
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined
      if (this.pending.length > 0 || this.pendingSteps.length > 0) this.scheduleFlush()
    })
    return this.flushing
  }

  /**
   * Writes everything queued, now; resolves when nothing is left (a drain's last step). While
   * the storage is unreachable it keeps retrying for up to `giveUpAfterMs`; then what is still
   * queued is dropped, with a warning, and left to lease recovery (the leases have expired by
   * then anyway when it is the lease duration).
   */
  async flushNow(giveUpAfterMs = Infinity): Promise<void> {
    const giveUpAt = this.ctx.deps.clock.now() + giveUpAfterMs
    while (this.flushing || this.pending.length > 0 || this.pendingSteps.length > 0) {
      if (this.retry.pending) {
        if (this.ctx.deps.clock.now() >= giveUpAt) return this.dropQueued()
        await this.retry.pending
        continue
      }
      await this.startFlush()
    }
  }

  /** Gives up on everything queued (the storage stayed unreachable through a drain). */
  private dropQueued(): void {
    const error = this.ctx.health.failure?.message ?? 'the storage is unreachable'
    if (this.pending.length > 0 || this.pendingSteps.length > 0)
      this.ctx.deps.logger.warn(
        { results: this.pending.length, stepRecords: this.pendingSteps.length, error },
        'stopping with results and step records not written (the storage is unreachable); ' +
          'their executions run again once their leases expire',
      )
    for (const { reject } of this.pendingSteps.splice(0)) reject(new Error(error))
    for (const { attempt } of this.pending.splice(0)) this.host.release(attempt)
    this.retry.cancel()
  }

  /** The storage was unreachable: flush again after the back-off (see the class comment). */
  private retryLater(): void {
    this.retry.arm()
  }

  private async flush(): Promise<void> {
    let first = true
    // Whether what this flush wrote may have made executions claimable (see `plainEnd`).
    let woke = false
    while (this.pending.length > 0 || this.pendingSteps.length > 0) {
      // Between chunks, let timers, claims and I/O run: one synchronous SQLite transaction of
      // thousands of writes would hold the event loop for hundreds of milliseconds.
      if (!first) await new Promise<void>((resolve) => defer(resolve))
      first = false
      if (this.pendingSteps.length > 0) {
        woke = true // step records may create children, or complete a wait
        if (!(await this.flushStepWrites())) return this.retryLater()
      }
      const ready = this.takeReadySettlements()
      if (ready.length === 0) continue
      const now = this.ctx.deps.clock.now()
      this.writingSettlements = ready.length
      const { applied, cancelled } = await this.writeSettlements(
        ready.map((b) => b.settlement),
        now,
      ).finally(() => (this.writingSettlements = 0))
      // What was not written (the storage became unreachable) goes back to the queue's head.
      const batch = ready.slice(0, applied.length)
      if (applied.length < ready.length) this.pending.unshift(...ready.slice(applied.length))
      batch.forEach(({ settlement, attempt }, i) => {
        this.host.release(attempt)
        if (applied[i] && settlement.parentRecord) this.family.recorded(settlement.id)
        if (applied[i]) reportSettled(this.ctx, attempt, settlement, now)
        else {
          attempt.logger.debug({ transition: settlement.transition }, 'stale attempt result ignored (fenced)')
          this.ctx.observer?.attemptEnded?.(attempt.info, 'aborted', now - attempt.startedAt)
        }
      })
      // An error captures a stack trace (tens of µs): made only when there is someone to give it.
      if (cancelled.length > 0) this.host.reportCancelled(cancelled, new ParentEndedError(), now)
      // A settlement fenced off may be this one's own, committed by an earlier call that failed
      // as unreachable (the connection dropped during COMMIT): what it did is not known.
      woke ||= batch.some(({ settlement }, i) => !applied[i] || !plainEnd(settlement))
      // Freed slots are refilled between chunks, not only after the whole backlog is written.
      this.host.written(woke)
      if (applied.length < ready.length) return this.retryLater()
    }
    this.host.written(woke)
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
      (oldest && this.ctx.deps.clock.now() - oldest.queuedAt >= MAX_WRITE_DELAY_MS)
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
  private takeReadySettlements(): PendingSettlement[] {
    if (this.pending.length === 0) return []
    let ready: PendingSettlement[]
    if (this.pendingSteps.length === 0) {
      ready = this.pending.splice(0, MAX_WRITES_PER_FLUSH)
    } else {
      const blocked = new Set(this.pendingSteps.map((p) => p.write.executionId))
      ready = []
      const rest: PendingSettlement[] = []
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
          entry.settlement = this.family.link(
            entry.attempt,
            this.host.failureSettlement(entry.attempt, error),
          )
      }
    }
    return ready
  }

  /**
   * Writes a batch in one transaction. If it fails, each settlement is written alone, so one
   * bad result never costs the others theirs; one that still fails is logged and left to
   * lease recovery (a new run). When the storage is unreachable, `applied` is shorter than
   * `settlements`: the ones past its end were not written and are to be tried again.
   */
  private async writeSettlements(settlements: Settlement[], now: number): Promise<SettleOutcome> {
    try {
      const outcome = await this.ctx.deps.storage.settle(settlements, now)
      this.ctx.health.ok()
      this.retry.reset()
      return outcome
    } catch (error) {
      if (isStorageUnavailable(error)) {
        this.ctx.health.failed('settle', error, `${settlements.length} results stay queued`)
        return { applied: [], cancelled: [] }
      }
      if (settlements.length === 1) {
        this.ctx.health.failed('settle', error, 'writing an attempt result failed', {
          executionId: settlements[0]!.id,
        })
        return { applied: [false], cancelled: [] }
      }
      this.ctx.health.failed('settle', error)
      const outcome: SettleOutcome = { applied: [], cancelled: [] }
      for (const settlement of settlements) {
        const one = await this.writeSettlements([settlement], now)
        if (one.applied.length === 0) break // unreachable now: the rest stay queued
        outcome.applied.push(...one.applied)
        outcome.cancelled.push(...one.cancelled)
      }
      return outcome
    }
  }

  /**
   * Writes a chunk of step records in one transaction. If it fails, each record is written
   * alone, in order, as settlements are: one record the storage refuses fails only the run
   * that made it, never the others of its chunk. When the storage is unreachable, the result
   * is shorter than `batch`: the records past its end were not written.
   */
  private async writeSteps(batch: readonly PendingStepWrite[]): Promise<(StepWriteResult | Failed)[]> {
    try {
      const results = await this.ctx.deps.storage.recordSteps(
        batch.map((b) => b.write),
        this.ctx.deps.clock.now(),
      )
      this.ctx.health.ok()
      this.retry.reset()
      return results
    } catch (error) {
      if (isStorageUnavailable(error)) {
        this.ctx.health.failed('record_steps', error, `${batch.length} step records stay queued`)
        for (const b of batch) b.maybeWritten = true
        return []
      }
      // Not logged: the error reaches the run that made the record (or fails its park).
      this.ctx.health.failed('record_steps', error)
      if (batch.length === 1) return [{ failed: error }]
      const results: (StepWriteResult | Failed)[] = []
      for (const b of batch) {
        const one = await this.writeSteps([b])
        if (one.length === 0) break // unreachable now: the rest stay queued
        results.push(...one)
      }
      return results
    }
  }

  /**
   * Writes one chunk of step records and settles their promises. Returns false when the
   * storage was unreachable: the records not written are back at the queue's head, in order.
   */
  private async flushStepWrites(): Promise<boolean> {
    const taken = this.takeStepWrites()
    const applied = await this.writeSteps(taken)
    const batch = taken.slice(0, applied.length)
    if (applied.length < taken.length) this.pendingSteps.unshift(...taken.slice(applied.length))
    batch.forEach((b, i) => deliverStepWriteResult(b, applied[i]!, this.stepWriteSink))
    return applied.length === taken.length
  }

  /**
   * Remembers that a write-behind record of this attempt was not written, so its park becomes
   * a failure. An awaited write's failure reached the run itself, which may have handled it.
   */
  private noteUnrecorded(entry: PendingStepWrite, error: unknown): void {
    if (!entry.behind) return
    const { write } = entry
    const attempt = this.host.get(write.executionId)
    if (attempt?.row.runs === write.run && !this.unrecorded.has(attempt)) this.unrecorded.set(attempt, error)
  }
}
