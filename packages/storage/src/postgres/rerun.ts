import type { RerunOutcome } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { lockExecution, readExecution } from './get'
import { isStoredId } from './ids'
import { appendHistory } from './history-append'

const REQUEUE = statement(
  'rerun_requeue',
  `UPDATE executions
      SET status = 'queued', run_at = $2, updated_at = $2, failures = 0, recoveries = 0, output = NULL, error = NULL,
          finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, wake_pending = 0,
            -- A rerun is never a burst's execution: it leaves its debounce key behind.
            debounce_key = NULL
    WHERE id = ANY($1::uuid[]) AND status IN ('failed', 'timed_out', 'cancelled')
      AND (deadline_at IS NULL OR deadline_at > $2)
   RETURNING id`,
)

// Only the failure that ended the run, as its last transition names it: a failure the run
// caught and went on from must replay as it was, or the replay would take another branch.
const FAILED_STEP = statement(
  'rerun_failed_step',
  `SELECT (detail::jsonb -> 'failedStep' ->> 'position')::int AS position,
          detail::jsonb -> 'failedStep' ->> 'name' AS name
     FROM execution_history WHERE execution_id = $1 AND event = 'status' ORDER BY seq DESC LIMIT 1`,
)
const FORGET_STEP = statement(
  'rerun_forget_step',
  `DELETE FROM execution_steps WHERE execution_id = $1 AND position = $2 AND status = 'failed' AND kind <> 'child'`,
)
const REWAIT_CHILD = statement(
  'rerun_rewait_child',
  `UPDATE execution_steps SET status = 'waiting', value = NULL, error = NULL, completed_at = NULL
    WHERE execution_id = $1 AND position = $2 AND status = 'failed' AND kind = 'child'`,
)

// Descendants cancelled because this execution (or one of them, below it) ended, walked down
// parent_id in breadth-first order (siblings by id), locked in id order.
const CANCELLED_WITH = statement(
  'rerun_cancelled_with',
  `WITH RECURSIVE tree(id, depth, path) AS (
     SELECT $1::uuid, 0, ARRAY[$1::uuid]
     UNION ALL
     SELECT e.id, tree.depth + 1, tree.path || e.id FROM tree JOIN executions e ON e.parent_id = tree.id
      WHERE e.status = 'cancelled' AND (e.error::jsonb ->> 'code') = 'PARENT_ENDED'
   ),
   locked AS (
     SELECT e.id, e.task_id, e.attempt FROM executions e
      WHERE e.id = ANY(ARRAY(SELECT id FROM tree)) AND e.id <> $1 ORDER BY e.id FOR NO KEY UPDATE OF e
   )
   SELECT locked.id, locked.task_id AS "taskId", locked.attempt AS run
     FROM locked JOIN tree ON tree.id = locked.id ORDER BY tree.depth, tree.path`,
)

/**
 * `rerun`: a failed, timed-out or cancelled execution → queued, due now, with fresh failure
 * and recovery budgets and no error, in one transaction (its row locked first), with the
 * descendants cancelled because it ended (error code PARENT_ENDED; each rerun the same way,
 * minus the forgetting). The recorded failure that ended it (the `failedStep` of its last
 * transition) is forgotten so it runs again: a step or wait record is deleted, a child record
 * waits on its child again. `undefined` for an unknown id; `rerunFrom: null` (nothing written)
 * when its status does not allow a rerun, or it is past its deadline. Failure semantics: all
 * or nothing; `StorageUnavailableError` when the database is unreachable.
 */
export async function rerun(
  database: PostgresDatabase,
  id: string,
  now: number,
): Promise<RerunOutcome | undefined> {
  if (!isStoredId(id)) return undefined
  return database.transaction(async (tx) => {
    const before = await lockExecution(tx, id)
    if (!before) return undefined
    // Read before the rerun's own history row is appended.
    const ended = (await tx.query<{ position: number | null; name: string | null }>(FAILED_STEP, [id]))
      .rows[0]
    if ((await tx.query(REQUEUE, [[id], now])).rowCount === 0)
      return { row: before, rerunFrom: null, descendants: [] }
    let forgotten: { position: number; name: string | null } | undefined
    if (ended?.position != null) {
      const at = [id, ended.position]
      const changes =
        ((await tx.query(FORGET_STEP, at)).rowCount ?? 0) + ((await tx.query(REWAIT_CHILD, at)).rowCount ?? 0)
      if (changes > 0) forgotten = { position: ended.position, name: ended.name }
    }
    await appendHistory(tx, [
      {
        executionId: id,
        at: now,
        fromStatus: before.status,
        toStatus: 'queued',
        run: before.runs,
        detail: JSON.stringify({ transition: 'rerun', ...(forgotten ? { forgotten } : {}) }),
      },
    ])
    tx.notifyWake()
    const found = (await tx.query<{ id: string; taskId: string; run: number }>(CANCELLED_WITH, [id])).rows
    // Each past its own deadline stays cancelled.
    const requeued =
      found.length === 0
        ? new Set<string>()
        : new Set(
            (await tx.query<{ id: string }>(REQUEUE, [found.map((d) => d.id), now])).rows.map((r) => r.id),
          )
    const descendants = found.filter((d) => requeued.has(d.id))
    await appendHistory(
      tx,
      descendants.map((d) => ({
        executionId: d.id,
        at: now,
        fromStatus: 'cancelled',
        toStatus: 'queued' as const,
        run: d.run,
        detail: JSON.stringify({ transition: 'rerun', with: id }),
      })),
    )
    return { row: (await readExecution(tx, id))!, rerunFrom: before.status, descendants }
  })
}
