import {
  EXECUTION_STATUSES,
  type ExecutionStatus,
  type TaskStatsRow,
  type ThroughputQuery,
  type ThroughputRow,
} from '@ratchet/core'
import type { SqliteDb } from './database'

/**
 * `taskStats`: one grouped read over executions_claim_idx (status, task_id, …, run_at), which
 * covers every column it needs, so no table row is read.
 */
export function prepareTaskStats(db: SqliteDb) {
  const statement = db.$client.prepare<
    [{ now: number }],
    { taskId: string; status: ExecutionStatus; n: number; due: number; oldest: number | null }
  >(
    `SELECT task_id AS taskId, status, count(*) AS n,
       sum(status = 'queued' AND run_at <= @now) AS due,
       min(CASE WHEN status = 'queued' AND run_at <= @now THEN run_at END) AS oldest
     FROM executions INDEXED BY executions_claim_idx
     GROUP BY status, task_id`,
  )
  return (now: number): TaskStatsRow[] => {
    const byTask = new Map<string, TaskStatsRow>()
    for (const row of statement.all({ now })) {
      let stats = byTask.get(row.taskId)
      if (!stats) {
        stats = {
          taskId: row.taskId,
          counts: Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<
            ExecutionStatus,
            number
          >,
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
}

/**
 * `throughput`: ended executions grouped by bucket of finished_at, and started ones by bucket
 * of started_at, each a range read of its partial index (executions_finished_idx,
 * executions_started_idx), which cover the columns read.
 */
export function prepareThroughput(db: SqliteDb) {
  const statement = db.$client.prepare<
    [{ from: number; to: number; bucketMs: number; taskId: string | null }],
    ThroughputRow
  >(
    `SELECT bucket, sum(completed) AS completed, sum(failed) AS failed, sum(timedOut) AS timedOut,
            sum(cancelled) AS cancelled, sum(started) AS started
     FROM (
       SELECT CAST((finished_at - @from) / @bucketMs AS INTEGER) AS bucket,
              sum(status = 'completed') AS completed, sum(status = 'failed') AS failed,
              sum(status = 'timed_out') AS timedOut, sum(status = 'cancelled') AS cancelled, 0 AS started
       FROM executions INDEXED BY executions_finished_idx
       WHERE finished_at IS NOT NULL AND finished_at >= @from AND finished_at < @to
         AND (@taskId IS NULL OR task_id = @taskId)
       GROUP BY 1
       UNION ALL
       SELECT CAST((started_at - @from) / @bucketMs AS INTEGER), 0, 0, 0, 0, count(*)
       FROM executions INDEXED BY executions_started_idx
       WHERE started_at IS NOT NULL AND started_at >= @from AND started_at < @to
         AND (@taskId IS NULL OR task_id = @taskId)
       GROUP BY 1
     )
     GROUP BY bucket ORDER BY bucket`,
  )
  return (query: ThroughputQuery): ThroughputRow[] =>
    statement.all({ from: query.from, to: query.to, bucketMs: query.bucketMs, taskId: query.taskId ?? null })
}
