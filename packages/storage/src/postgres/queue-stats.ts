import type { QueueStats } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'

/**
 * Queued executions per task, those due at `now` and the oldest due run_at: one grouped
 * read of executions_claim_idx (partial on queued, task_id first, run_at in it), which covers
 * every column read and yields the tasks in order, so neither the table nor a sort is needed.
 */
const QUEUE_STATS = statement(
  'queue_stats',
  `SELECT task_id AS "taskId", count(*) AS queued,
          count(*) FILTER (WHERE run_at <= $1) AS due,
          min(run_at) FILTER (WHERE run_at <= $1) AS "oldestDueAt"
     FROM executions
    WHERE status = 'queued'
    GROUP BY task_id
    ORDER BY task_id`,
)

/**
 * `queueStats`: the queue of every task with queued executions (for metrics). One
 * autocommitted statement. Failure semantics: an unreachable database throws
 * `StorageUnavailableError`.
 */
export async function queueStats(database: PostgresDatabase, now: number): Promise<QueueStats[]> {
  return (await database.query<QueueStats>(QUEUE_STATS, [now])).rows
}
