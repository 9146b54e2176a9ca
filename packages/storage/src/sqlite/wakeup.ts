import { isTerminalStatus, type ExecutionStatus, type WakeupOutcome } from '@ratchet/core'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import type { Wake } from './wake'

/**
 * `wakeup`: completes the waiting step registered under a wakeup key with a value or an
 * error, and wakes its execution, in one transaction. A step that is no longer waiting, or
 * whose execution finished, is left alone ('finished').
 */
export function prepareWakeup(db: SqliteDb, appendHistory: AppendHistory, wake: Wake) {
  const client = db.$client
  const find = client.prepare<
    [string],
    {
      executionId: string
      position: number
      name: string
      status: string
      executionStatus: ExecutionStatus
      run: number
    }
  >(
    `SELECT s.execution_id AS executionId, s.position, s.name, s.status, e.status AS executionStatus, e.attempt AS run
       FROM execution_steps s JOIN executions e ON e.id = s.execution_id WHERE s.wakeup_key = ?`,
  )
  const complete = client.prepare<
    [
      {
        status: string
        value: string | null
        error: string | null
        now: number
        id: string
        position: number
      },
    ]
  >(
    `UPDATE execution_steps SET status = @status, value = @value, error = @error, completed_at = @now
      WHERE execution_id = @id AND position = @position AND status = 'waiting'`,
  )
  const run = client.transaction(
    (key: string, result: { value: string } | { error: string }, now: number): WakeupOutcome => {
      const step = find.get(key)
      if (!step) return { result: 'not_found' }
      if (step.status !== 'waiting' || isTerminalStatus(step.executionStatus)) {
        return { result: 'finished', executionId: step.executionId }
      }
      const failed = 'error' in result
      complete.run({
        status: failed ? 'failed' : 'done',
        value: failed ? null : result.value,
        error: failed ? result.error : null,
        now,
        id: step.executionId,
        position: step.position,
      })
      appendHistory({
        executionId: step.executionId,
        at: now,
        fromStatus: step.executionStatus,
        toStatus: step.executionStatus,
        run: step.run,
        detail: JSON.stringify({ key, ...(failed ? { error: JSON.parse(result.error) as unknown } : {}) }),
        event: 'wakeup',
        name: step.name,
      })
      wake(step.executionId, now, `wakeup ${key}`)
      return { result: 'woken', executionId: step.executionId }
    },
  )
  return (key: string, result: { value: string } | { error: string }, now: number) => run(key, result, now)
}
