import type { QueueStats } from '@ratchet/core'
import type { SqliteDb } from './database'

/**
 * `queueStats`: queued executions per task, those due at `now`, and the oldest due run_at, in
 * one grouped statement over queued rows only (executions_claim_idx starts with status, task_id).
 */
export function prepareQueueStats(db: SqliteDb) {
  const statement = db.$client.prepare<[{ now: number }], QueueStats>(
    `SELECT task_id AS taskId, count(*) AS queued,
       sum(run_at <= @now) AS due,
       min(CASE WHEN run_at <= @now THEN run_at END) AS oldestDueAt
     FROM executions INDEXED BY executions_claim_idx
     WHERE status = 'queued'
     GROUP BY task_id
     ORDER BY task_id`,
  )
  return (now: number): QueueStats[] => statement.all({ now })
}
