import {
  EXECUTION_STATUSES,
  type ExecutionStatus,
  type TaskStatsRow,
  type ThroughputQuery,
  type ThroughputRow,
} from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'

/**
 * Counts per (task, status), and the due part of each queue, in one grouped read of every
 * execution. No index holds both task_id and status, so PostgreSQL reads the table (SQLite
 * reads its claim index, which holds every row there): a dashboard read, O(executions held).
 */
const TASK_STATS = statement(
  'task_stats',
  `SELECT task_id AS "taskId", status, count(*) AS n,
          count(*) FILTER (WHERE status = 'queued' AND run_at <= $1) AS due,
          min(run_at) FILTER (WHERE status = 'queued' AND run_at <= $1) AS oldest
     FROM executions
    GROUP BY task_id, status`,
)

/**
 * `taskStats`: per task with any execution, counts by status and the queued ones due at `now`.
 * One autocommitted statement. Failure semantics: an unreachable database throws
 * `StorageUnavailableError`.
 */
export async function taskStats(database: PostgresDatabase, now: number): Promise<TaskStatsRow[]> {
  const result = await database.query<{
    taskId: string
    status: ExecutionStatus
    n: number
    due: number
    oldest: number | null
  }>(TASK_STATS, [now])
  const byTask = new Map<string, TaskStatsRow>()
  for (const row of result.rows) {
    let stats = byTask.get(row.taskId)
    if (!stats) {
      stats = {
        taskId: row.taskId,
        counts: Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<ExecutionStatus, number>,
        queueDepth: 0,
        oldestQueuedAt: null,
      }
      byTask.set(row.taskId, stats)
    }
    stats.counts[row.status] = row.n
    if (row.status === 'queued') {
      stats.queueDepth = row.due
      stats.oldestQueuedAt = row.oldest
    }
  }
  return [...byTask.values()]
}

/**
 * Ended executions per bucket of finished_at (by final status) and first starts per bucket of
 * started_at, each a range read of its partial index (executions_finished_idx holds
 * finished_at, status and task_id; executions_started_idx started_at and task_id), merged by
 * bucket. `sum` of int8 is numeric in PostgreSQL: cast back, so the counts read as numbers.
 */
const THROUGHPUT = statement(
  'throughput',
  `SELECT bucket, sum(completed)::int8 AS completed, sum(failed)::int8 AS failed,
          sum(timed_out)::int8 AS "timedOut", sum(cancelled)::int8 AS cancelled, sum(started)::int8 AS started
     FROM (
       SELECT (finished_at - $1::int8) / $3::int8 AS bucket,
              count(*) FILTER (WHERE status = 'completed') AS completed,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              count(*) FILTER (WHERE status = 'timed_out') AS timed_out,
              count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
              0::int8 AS started
         FROM executions
        WHERE finished_at IS NOT NULL AND finished_at >= $1 AND finished_at < $2
          AND ($4::text IS NULL OR task_id = $4)
        GROUP BY 1
       UNION ALL
       SELECT (started_at - $1::int8) / $3::int8, 0, 0, 0, 0, count(*)
         FROM executions
        WHERE started_at IS NOT NULL AND started_at >= $1 AND started_at < $2
          AND ($4::text IS NULL OR task_id = $4)
        GROUP BY 1
     ) buckets
    GROUP BY bucket
    ORDER BY bucket`,
)

/**
 * `throughput`: executions ended and first started in `[from, to)`, per bucket of `bucketMs`;
 * empty buckets are absent. One autocommitted statement. Failure semantics: an unreachable
 * database throws `StorageUnavailableError`.
 */
export async function throughput(
  database: PostgresDatabase,
  query: ThroughputQuery,
): Promise<ThroughputRow[]> {
  const result = await database.query<ThroughputRow>(THROUGHPUT, [
    query.from,
    query.to,
    query.bucketMs,
    query.taskId ?? null,
  ])
  return result.rows
}
