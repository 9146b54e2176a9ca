import type { Attempts } from './attempt-lifecycle'
import { PARENT_ENDED_ERROR } from './attempt'
import type { ClaimLoop } from './claim-loop'
import type { TimerHandle } from './clock'
import { LeaseExpiredError, ParentEndedError, RecoveriesExhaustedError, serializeError } from './errors'
import type { ExecutorContext } from './executor-context'
import type { RunRef } from './storage'

/** An error Ratchet raises about an execution, not in it: its stack would only show the executor. */
const stackless = (error: Error) => JSON.stringify({ ...serializeError(error), stack: undefined })
const LEASE_EXPIRED_ERROR = stackless(new LeaseExpiredError())

/** @internal The lease timings of `ExecutorOptions`, resolved. */
export interface LeaseSettings {
  leaseMs: number
  heartbeatMs: number
  pollIntervalMs: number
}

/**
 * @internal Leases, both ways. This process's: a heartbeat every `heartbeatMs` extends the lease
 * of every attempt it holds (finished ones whose result is still queued too), and aborts those
 * whose lease it no longer holds. Other processes': lease recovery requeues the runs lost to a
 * crash, at start (every other owner's, when the storage is single-writer) and on the
 * safety-net poll every `pollIntervalMs`, which also makes the claim loop housekeep.
 */
export class Leases {
  private pollTimer: TimerHandle | undefined
  private heartbeatTimer: TimerHandle | undefined

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly settings: LeaseSettings,
    private readonly attempts: Attempts,
    private readonly claims: ClaimLoop,
  ) {}

  /**
   * Recovers runs lost to a crash: leases that expired, and with `everyOtherOwner` (single
   * writer, at start-up) every lease but ours. A lost run is not a failed attempt; the
   * recovery budget (`maxRecoveries`) ends an execution that keeps losing its runs. A storage
   * failure is logged and counted, not thrown: the next poll tries again.
   */
  async recover(everyOtherOwner: boolean): Promise<void> {
    const { deps } = this.ctx
    try {
      const now = deps.clock.now()
      const recovered = await deps.storage.recoverLeases({
        now,
        error: LEASE_EXPIRED_ERROR,
        exhaustedError: (maxRecoveries) => stackless(new RecoveriesExhaustedError(maxRecoveries)),
        cancelChildrenError: PARENT_ENDED_ERROR,
        limit: 1000,
        ...(everyOtherOwner ? { everyOwnerBut: this.ctx.workerId } : {}),
      })
      this.ctx.health.ok()
      for (const r of recovered) {
        this.ctx.observer?.recovered?.(r.taskId, r.status)
        const facts = {
          executionId: r.id,
          taskId: r.taskId,
          lostRun: r.run,
          progressed: r.progressed,
          recoveries: r.recoveries,
          maxRecoveries: r.maxRecoveries,
        }
        if (r.status === 'queued') deps.logger.warn(facts, 'recovered a run lost to a crash (lease expired)')
        else
          deps.logger.error(
            { ...facts, code: 'RECOVERIES_EXHAUSTED' },
            'execution failed: it lost more runs in a row to crashes than maxRecoveries allows',
          )
        deps.changes.emit({ id: r.id, taskId: r.taskId, status: r.status, run: r.run, at: now })
        this.attempts.reportCancelled(r.cancelledChildren, new ParentEndedError(), now)
      }
    } catch (error) {
      this.ctx.health.failed('recover_leases', error, 'lease recovery failed; retrying at the next poll')
    }
  }

  /** Arms the safety-net poll; it re-arms itself while the executor runs. */
  armPoll(): void {
    this.pollTimer = this.ctx.deps.clock.setTimeout(() => {
      if (this.ctx.state !== 'running') return
      void this.recover(false).then(() => {
        // The pump housekeeps even when every slot is busy and it claims nothing.
        this.claims.housekeepSoon()
        if (this.ctx.state === 'running') this.armPoll()
      })
    }, this.settings.pollIntervalMs)
  }

  stopPoll(): void {
    if (this.pollTimer) this.ctx.deps.clock.clearTimeout(this.pollTimer)
    this.pollTimer = undefined
  }

  /** Arms the heartbeat; it re-arms itself while the executor runs or drains. */
  armHeartbeat(): void {
    this.heartbeatTimer = this.ctx.deps.clock.setTimeout(() => {
      void this.heartbeat().then(() => {
        if (this.ctx.state === 'running' || this.ctx.state === 'draining') this.armHeartbeat()
      })
    }, this.settings.heartbeatMs)
  }

  stopHeartbeat(): void {
    if (this.heartbeatTimer) this.ctx.deps.clock.clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  private async heartbeat(): Promise<void> {
    const leases: RunRef[] = []
    // Finished attempts too: a park or result queued behind a long backlog keeps its lease
    // until it is written (a fenced write after a recovery would lose the result).
    for (const a of this.attempts.values()) leases.push({ id: a.row.id, run: a.row.runs })
    if (leases.length === 0) return
    const { deps } = this.ctx
    try {
      const lost = await deps.storage.extendLeases(
        this.ctx.workerId,
        leases,
        deps.clock.now(),
        this.settings.leaseMs,
      )
      this.ctx.health.ok()
      for (const ref of lost) {
        const attempt = this.attempts.get(ref.id)
        if (attempt?.row.runs === ref.run) {
          this.attempts.abort(
            ref.id,
            new LeaseExpiredError('this worker no longer holds the lease (cancelled or recovered elsewhere)'),
          )
        }
      }
    } catch (error) {
      this.ctx.health.failed(
        'extend_leases',
        error,
        'lease heartbeat failed; retrying at the next heartbeat (a lease not extended in time is recovered elsewhere)',
      )
    }
  }
}
