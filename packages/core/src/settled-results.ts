import type { RunningAttempt } from './attempt'
import { SETTLED_STATUS } from './attempt'
import type { ExecutorContext } from './executor-context'
import type { AttemptOutcome } from './observer'
import type { Settlement } from './storage'

const OUTCOME: Record<Settlement['transition'], AttemptOutcome> = {
  park: 'parked',
  complete: 'completed',
  retry: 'retried',
  release: 'released',
  fail: 'failed',
  time_out: 'timed_out',
  continue: 'continued',
}

/**
 * @internal A run's end that makes nothing claimable: its execution is finished, and no parent
 * learns of it. Any other settlement may (a retry or release queues it again, a park may find it
 * woken, a child's end wakes its parent).
 */
export function plainEnd(settlement: Settlement): boolean {
  const { transition } = settlement
  return (
    (transition === 'complete' || transition === 'fail' || transition === 'time_out') &&
    !settlement.wakeParentId &&
    !settlement.parentRecord
  )
}

/** @internal A written result reaches the change feed, the observer and the log. */
export function reportSettled(
  ctx: ExecutorContext,
  attempt: RunningAttempt,
  settlement: Settlement,
  now: number,
): void {
  const status = SETTLED_STATUS[settlement.transition]
  const { row } = attempt
  ctx.deps.changes.emit({ id: row.id, taskId: row.taskId, status, run: row.runs, at: now })
  const durationMs = now - attempt.startedAt
  ctx.observer?.attemptEnded?.(attempt.info, OUTCOME[settlement.transition], durationMs)
  if (settlement.transition === 'complete') attempt.logger.info({ durationMs }, 'execution completed')
  else if (settlement.transition === 'fail' || settlement.transition === 'time_out') {
    attempt.logger.error(
      { durationMs, status, err: JSON.parse(settlement.error) as unknown },
      `execution ${status}`,
    )
  }
}
