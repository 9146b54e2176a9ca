/**
 * A recursive CTE `levels(task_id, turn, priority)`: for each row of `tasks` (a relation with
 * `task_id` and `turn`), the distinct priorities of its queued executions, highest first, and
 * one last row with a NULL priority. A skip-scan of `executions_claim_idx` (task_id, priority
 * DESC, run_at, id), one index probe per priority, so that each (task, priority) can then be
 * read from its head in run_at order: the index puts run_at after priority, so a range on
 * run_at alone would read a task's rows of every priority, future ones included. Used by the
 * claim and by nextDueAt; prefix it with `WITH RECURSIVE`.
 */
export const QUEUED_LEVELS = `levels(task_id, turn, priority) AS (
     SELECT t.task_id, t.turn,
            (SELECT max(e.priority) FROM executions e WHERE e.status = 'queued' AND e.task_id = t.task_id)
       FROM tasks t
     UNION ALL
     SELECT l.task_id, l.turn,
            (SELECT max(e.priority) FROM executions e
              WHERE e.status = 'queued' AND e.task_id = l.task_id AND e.priority < l.priority)
       FROM levels l WHERE l.priority IS NOT NULL
   )`
