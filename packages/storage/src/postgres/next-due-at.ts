import { WAIT_FOREVER } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'

/**
 * The earliest time something is due: a queued execution of these tasks (its run_at), any
 * waiting execution (its sleep end or wait timeout), any deadline of a queued or waiting one.
 * Each part is the first entry of its partial index (`executions_due_idx`,
 * `executions_waiting_due_idx`, `executions_deadline_idx`), so the cost does not grow with
 * the rows held. Waiting executions and deadlines are not filtered by task: housekeeping
 * serves every task.
 */
const NEXT_DUE = statement(
  'next_due_at',
  `SELECT least(
     (SELECT run_at FROM executions WHERE status = 'queued' AND task_id = ANY($1::text[]) ORDER BY run_at LIMIT 1),
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
