import { WAIT_FOREVER } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { QUEUED_LEVELS } from './queued-levels'

/**
 * The earliest time something is due: a queued execution of these tasks (its run_at), any
 * waiting execution (its sleep end or wait timeout), any deadline of a queued or waiting one.
 * Each part reads index heads only, so the cost does not grow with the rows held: the queued
 * part the head of each (task, priority) of `executions_claim_idx` (see queued-levels.ts; the
 * head of `executions_due_idx` could sit behind any number of other tasks' rows), the others
 * the first entry of `executions_waiting_due_idx` and `executions_deadline_idx`. Waiting executions and deadlines are not filtered by task: housekeeping
 * serves every task.
 */
const NEXT_DUE = statement(
  'next_due_at',
  `WITH RECURSIVE
   tasks AS (SELECT task_id, 0 AS turn FROM unnest($1::text[]) AS t(task_id)),
   ${QUEUED_LEVELS}
   SELECT least(
     (SELECT min((SELECT e.run_at FROM executions e
                   WHERE e.status = 'queued' AND e.task_id = l.task_id AND e.priority = l.priority
                   ORDER BY e.run_at LIMIT 1))
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
