import type { ExecutionRow, RerunOutcome } from '@ratchet/core'
import { eq, sql } from 'drizzle-orm'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/**
 * `rerun`: a failed, timed-out or cancelled execution → queued, due now, with fresh failure
 * and recovery budgets (failures and recoveries 0; runs, the fence, keep counting) and no
 * error, in one transaction, with the descendants that were cancelled because it ended (error
 * code PARENT_ENDED; each rerun the same way, minus the forgetting).
 * The recorded failure that ended it (the `failedStep` of its last transition) is forgotten so
 * it runs again: a step or wait record is deleted, a child record goes back to waiting on the
 * same child (the rerun reads that child afresh: retried meanwhile, it may have completed).
 * Every other record is kept, so a rerun resumes after the last step that worked and replays
 * caught failures as they were. `undefined` for an unknown id; `rerunFrom: null` (nothing
 * written) when the execution is not in a status a rerun applies to, or is past its deadline.
 */
export function prepareRerun(db: SqliteDb, appendHistory: AppendHistory) {
  const client = db.$client
  const byId = db
    .select()
    .from(executions)
    .where(eq(executions.id, sql.placeholder('id')))
    .prepare()
  const requeue = client.prepare<[{ id: string; now: number }]>(
    `UPDATE executions
        SET status = 'queued', run_at = @now, updated_at = @now, failures = 0, recoveries = 0, output = NULL, error = NULL,
            finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, wake_pending = 0,
            -- A rerun is never a burst's execution: it leaves its debounce key behind.
            debounce_key = NULL
      WHERE id = @id AND status IN ('failed', 'timed_out', 'cancelled')
        AND (deadline_at IS NULL OR deadline_at > @now)`,
  )
  // Only the failure that ended the run, as its last transition names it: a failure the run
  // caught and went on from must replay as it was, or the replay would take another branch.
  const failedStep = client.prepare<[{ id: string }], { position: number | null; name: string | null }>(
    `SELECT json_extract(detail, '$.failedStep.position') AS position, json_extract(detail, '$.failedStep.name') AS name
       FROM execution_history WHERE execution_id = @id AND event = 'status' ORDER BY seq DESC LIMIT 1`,
  )
  const forgetStep = client.prepare<[{ id: string; position: number }]>(
    `DELETE FROM execution_steps WHERE execution_id = @id AND position = @position AND status = 'failed'
        AND kind != 'child'`,
  )
  const rewaitChild = client.prepare<[{ id: string; position: number }]>(
    `UPDATE execution_steps SET status = 'waiting', value = NULL, error = NULL, completed_at = NULL
      WHERE execution_id = @id AND position = @position AND status = 'failed' AND kind = 'child'`,
  )
  // Descendants cancelled because this execution (or one of them, below it) ended, walked
  // from the tree down by parent_id: CROSS JOIN fixes the order, and the unary + keeps
  // SQLite from reading every cancelled row through the status index instead.
  const cancelledWith = client.prepare<
    [{ id: string }],
    { id: string; taskId: string; status: string; run: number }
  >(
    `WITH RECURSIVE tree(id) AS (
       SELECT @id
       UNION ALL
       SELECT e.id FROM tree CROSS JOIN executions e ON e.parent_id = tree.id
        WHERE +e.status = 'cancelled' AND json_extract(e.error, '$.code') = 'PARENT_ENDED'
     )
     SELECT e.id, e.task_id AS taskId, e.status, e.attempt AS run FROM tree CROSS JOIN executions e ON e.id = tree.id
      WHERE e.id != @id`,
  )
  const run = client.transaction((id: string, now: number): RerunOutcome | undefined => {
    const before = byId.get({ id })
    if (!before) return undefined
    // Read before the rerun's own history row is appended.
    const ended = failedStep.get({ id })
    if (requeue.run({ id, now }).changes === 0) return { row: before, rerunFrom: null, descendants: [] }
    let forgotten: { position: number; name: string | null } | undefined
    if (ended?.position != null) {
      const at = { id, position: ended.position }
      if (forgetStep.run(at).changes + rewaitChild.run(at).changes > 0)
        forgotten = { position: ended.position, name: ended.name }
    }
    appendHistory({
      executionId: id,
      at: now,
      fromStatus: before.status,
      toStatus: 'queued',
      run: before.runs,
      detail: JSON.stringify({ transition: 'rerun', ...(forgotten ? { forgotten } : {}) }),
    })
    const descendants: RerunOutcome['descendants'] = []
    for (const d of cancelledWith.all({ id })) {
      if (requeue.run({ id: d.id, now }).changes === 0) continue // past its own deadline
      appendHistory({
        executionId: d.id,
        at: now,
        fromStatus: 'cancelled',
        toStatus: 'queued',
        run: d.run,
        detail: JSON.stringify({ transition: 'rerun', with: id }),
      })
      descendants.push({ id: d.id, taskId: d.taskId, run: d.run })
    }
    const row = byId.get({ id }) as ExecutionRow
    return { row, rerunFrom: before.status, descendants }
  })
  return (id: string, now: number) => run(id, now)
}
