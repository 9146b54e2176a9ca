import { statement, type Tx } from './database'

/**
 * One statement, so no wake-up is lost to a concurrent park: the UPDATE takes the row lock, and
 * a park (an UPDATE of the same row) either ran before it (then the row is `waiting` and goes
 * back to `queued`) or waits for it and then sees `wake_pending = 1` (and requeues instead of
 * waiting). A `waiting` row goes to `queued` due now, with its history row; a `running` one is
 * marked `wake_pending`; any other status is left alone.
 */
const WAKE = statement(
  'wake',
  `WITH woken AS (
     UPDATE executions SET
       status = CASE WHEN status = 'waiting' THEN 'queued' ELSE status END,
       run_at = CASE WHEN status = 'waiting' THEN $2 ELSE run_at END,
       updated_at = CASE WHEN status = 'waiting' THEN $2 ELSE updated_at END,
       wake_pending = CASE WHEN status = 'running' THEN 1 ELSE 0 END
      WHERE id = $1 AND status IN ('waiting', 'running')
     RETURNING id, status, attempt
   )
   INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
   SELECT id, $2, 'waiting', 'queued', attempt, $3 FROM woken WHERE status = 'queued'`,
)

/**
 * Wakes an execution because something it may wait for happened (a signal, a child's end, a
 * cancel below it), inside the caller's transaction: `waiting` → `queued` now; a `running` one
 * is marked `wake_pending`, so its next park requeues it instead. Returns whether a waiting
 * execution was queued (then the transaction sends `ratchet_wake` and `ratchet_change`).
 */
export async function wake(tx: Tx, id: string, now: number, reason: string): Promise<boolean> {
  const result = await tx.query(WAKE, [id, now, JSON.stringify({ transition: 'wake', reason })])
  if (result.rowCount !== 1) return false
  tx.notifyWake()
  tx.notifyChange()
  return true
}
