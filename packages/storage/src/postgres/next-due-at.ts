import { WAIT_FOREVER } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { NOT_PAUSED } from './task-queues'

/**
 * The earliest time something is due: a queued execution of these tasks, unless paused (its run_at), any
 * waiting execution (its sleep end or wait timeout), any deadline of a queued or waiting one.
 * The queued part is the head of each (task, priority) in `executions_claim_idx` (the
 * priorities found by a skip-scan, as the claim's `levels`), ordered by (run_at, id) as that
 * index is, so no plan walks `executions_due_idx` instead: filtering the tasks there read every
 * row of other tasks due earlier (20,000 in postgres-query-plans.test.ts). The others are the
 * first entry of their partial index (`executions_waiting_due_idx`, `executions_deadline_idx`).
 * So the cost does not grow with the rows held. Waiting executions and deadlines are not filtered by task: housekeeping
 * serves every task.
 */
const NEXT_DUE = statement(
  'next_due_at',
  `WITH RECURSIVE levels(task_id, priority) AS (
     SELECT t.task_id,
            (SELECT max(e.priority) FROM executions e WHERE e.status = 'queued' AND e.task_id = t.task_id)
       FROM unnest($1::text[]) AS t(task_id)
      WHERE ${NOT_PAUSED}
     UNION ALL
     SELECT l.task_id,
            (SELECT max(e.priority) FROM executions e
              WHERE e.status = 'queued' AND e.task_id = l.task_id AND e.priority < l.priority)
       FROM levels l WHERE l.priority IS NOT NULL
   )
   SELECT least(
     (SELECT min((SELECT e.run_at FROM executions e
                   WHERE e.status = 'queued' AND e.task_id = l.task_id AND e.priority = l.priority
                   ORDER BY e.run_at, e.id LIMIT 1))
        FROM levels l WHERE l.priority IS NOT NULL),
     (SELECT run_at FROM executions WHERE status = 'waiting' AND run_at < $2 ORDER BY run_at LIMIT 1),
     (SELECT deadline_at FROM executions
       WHERE deadline_at IS NOT NULL AND status IN ('queued', 'waiting') ORDER BY deadline_at LIMIT 1)
   ) AS "dueAt"`,
)

/**
 * `nextDueAt`: when the executor's one timer should fire next (then it housekeeps and
 * claims), or `null` when nothing is due ever. Failure semantics: a read;
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function nextDueAt(
  database: PostgresDatabase,
  taskIds: readonly string[],
): Promise<number | null> {
  const row = (await database.query<{ dueAt: number | null }>(NEXT_DUE, [taskIds, WAIT_FOREVER])).rows[0]
  const dueAt = row?.dueAt ?? null
  return dueAt === null || dueAt >= WAIT_FOREVER ? null : dueAt
}
