import type { ExecutionRow, RerunOutcome } from '@ratchet/core'
import { eq, sql } from 'drizzle-orm'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/**
 * `rerun`: a failed, timed-out or cancelled execution → queued, due now, with a fresh
 * failure budget and no error, in one transaction. The failure that ended it (its last record,
 * when that is a failed step or wait) is deleted so it runs again; every other record is kept,
 * so a rerun resumes after the last step that worked and replays caught failures as they were.
 * `undefined` for an unknown id; `rerunFrom: null` (nothing written) when the execution is not
 * in a status a rerun applies to, or is past its deadline.
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
        SET status = 'queued', run_at = @now, updated_at = @now, failures = 0, output = NULL, error = NULL,
            finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, wake_pending = 0
      WHERE id = @id AND status IN ('failed', 'timed_out', 'cancelled')
        AND (deadline_at IS NULL OR deadline_at > @now)`,
  )
  // Only the failure that ended the run (the last record): a failure the run caught and
  // went on from must replay as it was, or the replay would take another branch.
  const forgetFailure = client.prepare<[{ id: string }]>(
    `DELETE FROM execution_steps
      WHERE execution_id = @id AND status = 'failed'
        AND position = (SELECT max(position) FROM execution_steps WHERE execution_id = @id)`,
  )
  const run = client.transaction((id: string, now: number): RerunOutcome | undefined => {
    const before = byId.get({ id })
    if (!before) return undefined
    if (requeue.run({ id, now }).changes === 0) return { row: before, rerunFrom: null }
    const forgotten = forgetFailure.run({ id }).changes
    appendHistory({
      executionId: id,
      at: now,
      fromStatus: before.status,
      toStatus: 'queued',
      attempt: before.attempt,
      detail: JSON.stringify({ transition: 'rerun', forgottenFailures: forgotten }),
    })
    const row = byId.get({ id }) as ExecutionRow
    return { row, rerunFrom: before.status }
  })
  return (id: string, now: number) => run(id, now)
}
