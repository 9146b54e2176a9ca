import type { TaskQueueRow } from '@ratchet/core'
import type { SqliteDb } from './database'

/**
 * `setTaskPaused` and `taskQueues`: the `task_queues` rows operators set at run time. One
 * writer, so an upsert is the whole story; the engine wakes its own claim loop on resume.
 */
export function prepareTaskQueues(db: SqliteDb) {
  // Pausing a paused queue keeps its paused_at (when it was first paused).
  const upsert = db.$client.prepare<[{ taskId: string; pausedAt: number | null; now: number }], TaskQueueRow>(
    `INSERT INTO task_queues (task_id, paused_at, updated_at) VALUES (@taskId, @pausedAt, @now)
     ON CONFLICT (task_id) DO UPDATE SET
       paused_at = CASE WHEN excluded.paused_at IS NULL THEN NULL ELSE coalesce(task_queues.paused_at, excluded.paused_at) END,
       updated_at = excluded.updated_at
     RETURNING task_id AS taskId, paused_at AS pausedAt`,
  )
  const all = db.$client.prepare<[], TaskQueueRow>(
    `SELECT task_id AS taskId, paused_at AS pausedAt FROM task_queues ORDER BY task_id`,
  )
  return {
    setPaused: (taskId: string, paused: boolean, now: number): TaskQueueRow =>
      upsert.get({ taskId, pausedAt: paused ? now : null, now })!,
    all: (): TaskQueueRow[] => all.all(),
  }
}

/** The ids of paused tasks: the claim passes over their queued executions. */
export function preparePausedTasks(db: SqliteDb) {
  const statement = db.$client
    .prepare<[], string>(`SELECT task_id FROM task_queues WHERE paused_at IS NOT NULL`)
    .pluck(true)
  return (): Set<string> => new Set(statement.all())
}
