import { isTerminalStatus, type ExecutionStatus, type WakeupOutcome } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { appendHistory } from './history-append'
import { wake } from './wake'

/** The execution holding the wait registered under the key, its row locked. */
const LOCK_HOLDER = statement(
  'wakeup_lock_holder',
  `SELECT id, status, attempt AS run FROM executions
    WHERE id = (SELECT execution_id FROM execution_steps WHERE wakeup_key = $1)
    FOR NO KEY UPDATE`,
)

/**
 * Completes the wait if it still waits: a fresh statement after the lock, and the step row's
 * own lock, so a concurrent record or wakeup of it is seen, never overwritten.
 */
const COMPLETE = statement(
  'wakeup_complete',
  `UPDATE execution_steps SET status = $2, value = $3, error = $4, completed_at = $5
    WHERE wakeup_key = $1 AND status = 'waiting'
   RETURNING name`,
)

/**
 * `wakeup`: completes the waiting step registered under a wakeup key with a value or an
 * error, appends its history row and wakes its execution, in one transaction holding the
 * execution's row lock. A step that is no longer waiting, or whose execution finished, is left
 * alone ('finished'); an unknown key is 'not_found'. Failure semantics: all or nothing;
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function wakeup(
  database: PostgresDatabase,
  key: string,
  result: { value: string } | { error: string },
  now: number,
): Promise<WakeupOutcome> {
  return database.transaction(async (tx) => {
    const holder = (await tx.query<{ id: string; status: ExecutionStatus; run: number }>(LOCK_HOLDER, [key]))
      .rows[0]
    if (!holder) return { result: 'not_found' }
    if (isTerminalStatus(holder.status)) return { result: 'finished', executionId: holder.id }
    const failed = 'error' in result
    const step = (
      await tx.query<{ name: string }>(COMPLETE, [
        key,
        failed ? 'failed' : 'done',
        failed ? null : result.value,
        failed ? result.error : null,
        now,
      ])
    ).rows[0]
    // Completed meanwhile (the key's record cannot move to another execution: its holder is locked).
    if (!step) return { result: 'finished', executionId: holder.id }
    await appendHistory(tx, [
      {
        executionId: holder.id,
        at: now,
        fromStatus: holder.status,
        toStatus: holder.status,
        run: holder.run,
        detail: JSON.stringify({ key, ...(failed ? { error: JSON.parse(result.error) as unknown } : {}) }),
        event: 'wakeup',
        name: step.name,
      },
    ])
    await wake(tx, holder.id, now, `wakeup ${key}`)
    return { result: 'woken', executionId: holder.id }
  })
}
