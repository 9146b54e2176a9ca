import type { TaskQueueRow } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'

/** Pausing a paused queue keeps its paused_at (when it was first paused). */
const SET_PAUSED = statement(
  'task_queue_set_paused',
  `INSERT INTO task_queues (task_id, paused_at, updated_at) VALUES ($1, $2, $3)
   ON CONFLICT (task_id) DO UPDATE SET
     paused_at = CASE WHEN excluded.paused_at IS NULL THEN NULL
                      ELSE coalesce(task_queues.paused_at, excluded.paused_at) END,
     updated_at = excluded.updated_at
   RETURNING task_id AS "taskId", paused_at AS "pausedAt"`,
)

const ALL = statement(
  'task_queues',
  `SELECT task_id AS "taskId", paused_at AS "pausedAt" FROM task_queues ORDER BY task_id`,
)

/**
 * A condition on a relation `t` with a `task_id` column: its task is not paused. The claim and
 * `nextDueAt` put it on their task lists (one primary-key probe per task).
 */
export const NOT_PAUSED = `NOT EXISTS (SELECT 1 FROM task_queues q WHERE q.task_id = t.task_id AND q.paused_at IS NOT NULL)`

/**
 * `setTaskPaused`: one transaction; a resume sends `ratchet_wake` at its commit, so every
 * replica's claim loop looks at the queue again at once. Failure semantics: all or nothing;
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function setTaskPaused(
  database: PostgresDatabase,
  taskId: string,
  paused: boolean,
  now: number,
): Promise<TaskQueueRow> {
  return database.transaction(async (tx) => {
    const row = (await tx.query<TaskQueueRow>(SET_PAUSED, [taskId, paused ? now : null, now])).rows[0]!
    if (!paused) tx.notifyWake()
    return row
  })
}

export async function taskQueues(database: PostgresDatabase): Promise<TaskQueueRow[]> {
  return (await database.query<TaskQueueRow>(ALL)).rows
}
