import { statement, type Tx } from './database'

/**
 * One statement, so no wake-up is lost to a concurrent park or claim. `target` locks the row
 * first, whatever its status among queued, waiting and running, until the caller's transaction
 * commits (waiting for a claim or a park in flight, and reading the row as they left it):
 * - `waiting`: it goes to `queued` due now, with its history row;
 * - `running`: it is marked `wake_pending`; a park (an UPDATE of the same row) either committed
 *   before (then the row was `waiting`, above) or waits for this lock and then sees
 *   `wake_pending = 1` (and requeues instead of waiting);
 * - `queued`: nothing changes, but the lock matters: a claim (`FOR NO KEY UPDATE SKIP LOCKED`)
 *   passes the row over until this transaction commits, so the run it starts reads what this
 *   transaction wrote (a child's end, a signal). Without it a claim could start the run in
 *   between, read the child as still running, and park it for good: nothing wakes it again.
 * `woken` decides on `t.was`, the status under the lock, never on a condition on `e.status`:
 * such a condition is checked on the row as the statement's snapshot saw it, and a row that a
 * claim moved to `running` after the snapshot would be passed over as still `queued` (PostgreSQL
 * re-checks a concurrently updated row only when its snapshot version matched). The SET reads
 * the row as it is under the lock. Any other status is left alone. Returns the status the row
 * had (`was`) and, when it was woken, its new one.
 */
const WAKE = statement(
  'wake',
  `WITH target AS (
     SELECT id, status AS was FROM executions
      WHERE id = $1 AND status IN ('queued', 'waiting', 'running')
      FOR NO KEY UPDATE
   ),
   woken AS (
     UPDATE executions e SET
       status = CASE WHEN e.status = 'waiting' THEN 'queued' ELSE e.status END,
       run_at = CASE WHEN e.status = 'waiting' THEN $2 ELSE e.run_at END,
       updated_at = CASE WHEN e.status = 'waiting' THEN $2 ELSE e.updated_at END,
       wake_pending = CASE WHEN e.status = 'running' THEN 1 ELSE 0 END
       FROM target t
      WHERE e.id = t.id AND t.was IN ('waiting', 'running')
     RETURNING e.id, e.status, e.attempt
   ),
   history AS (
     INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
     SELECT id, $2, 'waiting', 'queued', attempt, $3 FROM woken WHERE status = 'queued'
   )
   SELECT t.was, w.status AS now FROM target t LEFT JOIN woken w ON w.id = t.id`,
)

/**
 * Wakes an execution because something it may wait for happened (a signal, a child's end, a
 * cancel below it), inside the caller's transaction: `waiting` → `queued` now; a `running` one
 * is marked `wake_pending`, so its next park requeues it instead; a `queued` one is held until
 * commit (see WAKE). Returns whether a waiting execution was queued (then the transaction
 * sends `ratchet_wake` and `ratchet_change`; for a queued one only `ratchet_wake`: a claimer
 * may have passed it over while it was held).
 */
export async function wake(tx: Tx, id: string, now: number, reason: string): Promise<boolean> {
  const result = await tx.query<{ was: string; now: string | null }>(WAKE, [
    id,
    now,
    JSON.stringify({ transition: 'wake', reason }),
  ])
  const row = result.rows[0]
  if (row?.was === 'queued') tx.notifyWake()
  if (row?.now !== 'queued') return false
  tx.notifyWake()
  tx.notifyChange()
  return true
}
