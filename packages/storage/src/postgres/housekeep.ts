import { CANCELLABLE_STATUSES, type HousekeepOutcome, type StatusChange } from '@ratchet/core'
import { sqlStrings } from './columns'
import { statement, type PostgresDatabase, type Tx } from './database'
import { wake } from './wake'

/** The transaction-level advisory lock that makes one process at a time housekeep ("ratchet\0\x01"). */
export const HOUSEKEEP_LOCK_KEY = 0x7261746368650001n

const TRY_LOCK = statement('housekeep_try_lock', `SELECT pg_try_advisory_xact_lock($1::bigint) AS locked`)

/**
 * Waiting executions whose `run_at` came (a sleep ended, a wait timed out) → queued, with their
 * history rows: up to `$3` of them, earliest first, locked in id order. Their `run_at` stays the time they
 * were due (claim order is oldest first). Returns one row past the limit, unchanged, to tell
 * whether more are due. The update takes its rows by `id = ANY(ARRAY(...))`, a primary-key
 * lookup under any plan (as `UPDATE ... FROM numbered`, a generic plan, which a named statement
 * may settle on after five runs, hashed a scan of every execution: postgres-query-plans.test.ts);
 * EXPIRE likewise.
 */
const WAKE_DUE = statement(
  'housekeep_wake_due',
  `WITH due AS (
     SELECT id FROM executions WHERE status = 'waiting' AND run_at <= $1
      ORDER BY run_at, id LIMIT $3 + 1
   ),
   locked AS (
     SELECT e.id, e.run_at FROM executions e JOIN due ON due.id = e.id
      WHERE e.status = 'waiting' AND e.run_at <= $1
      ORDER BY e.id FOR NO KEY UPDATE OF e
   ),
   numbered AS (SELECT id, row_number() OVER (ORDER BY run_at, id) AS n FROM locked),
   woken AS (
     UPDATE executions e SET status = 'queued', updated_at = $1
      WHERE e.id = ANY(ARRAY(SELECT id FROM numbered WHERE n <= $3))
     RETURNING e.id, e.task_id AS "taskId", e.attempt AS run, (SELECT n FROM numbered WHERE numbered.id = e.id) AS n
   ),
   history AS (
     INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
     SELECT id, $1, 'waiting', 'queued', run, $2 FROM woken ORDER BY n
   )
   SELECT id, "taskId", run, (SELECT count(*) FROM locked) AS found FROM woken ORDER BY n`,
)

const stillOpen = sqlStrings(CANCELLABLE_STATUSES.filter((s) => s !== 'running'))

/**
 * Queued and waiting executions past their deadline → timed_out (the `expire` transition: a
 * failed attempt, failures + 1), with their history rows: up to `$3`, earliest deadline first, locked in id order, one
 * more row counted to tell whether more are due. Running ones are timed out by their run's
 * timer.
 */
const EXPIRE = statement(
  'housekeep_expire',
  `WITH due AS (
     SELECT id FROM executions
      WHERE deadline_at IS NOT NULL AND status IN ('queued', 'waiting') AND deadline_at <= $1
      ORDER BY deadline_at, id LIMIT $3 + 1
   ),
   locked AS (
     SELECT e.id, e.status, e.deadline_at FROM executions e JOIN due ON due.id = e.id
      WHERE e.status IN (${stillOpen}) AND e.deadline_at <= $1
      ORDER BY e.id FOR NO KEY UPDATE OF e
   ),
   numbered AS (SELECT id, status, row_number() OVER (ORDER BY deadline_at, id) AS n FROM locked),
   expired AS (
     UPDATE executions e
        SET status = 'timed_out', error = $2, failures = e.failures + 1, finished_at = $1, updated_at = $1
      WHERE e.id = ANY(ARRAY(SELECT id FROM numbered WHERE n <= $3))
     RETURNING e.id, e.task_id AS "taskId", e.attempt AS run,
               (SELECT status FROM numbered WHERE numbered.id = e.id) AS "from",
               e.parent_id AS "parentId", e.wakes_parent AS "wakesParent",
               (SELECT n FROM numbered WHERE numbered.id = e.id) AS n
   ),
   history AS (
     INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
     SELECT id, $1, "from", 'timed_out', run, $4 FROM expired ORDER BY n
   )
   SELECT id, "taskId", run, "from", "parentId", "wakesParent", (SELECT count(*) FROM locked) AS found
     FROM expired ORDER BY n`,
)

const DEADLINE_ERROR = JSON.stringify({
  name: 'DeadlineExceededError',
  message: 'the execution ran past its deadline',
  code: 'DEADLINE_EXCEEDED',
  retryable: false,
})

type Woken = { id: string; taskId: string; run: number; found: number }
type Expired = Woken & { from: 'queued' | 'waiting'; parentId: string | null; wakesParent: number }

async function work(tx: Tx, now: number, limit: number) {
  const changed: StatusChange[] = []
  const woken = (await tx.query<Woken>(WAKE_DUE, [now, '{"transition":"wake","reason":"due"}', limit])).rows
  for (const row of woken)
    changed.push({ id: row.id, taskId: row.taskId, from: 'waiting', to: 'queued', run: row.run })
  let more = (woken[0]?.found ?? 0) > limit
  if (woken.length > 0) {
    tx.notifyWake()
    tx.notifyChange()
  }
  const left = limit - woken.length
  if (left > 0) {
    const detail = `{"transition":"expire","error":${DEADLINE_ERROR}}`
    const expired = (await tx.query<Expired>(EXPIRE, [now, DEADLINE_ERROR, left, detail])).rows
    if (expired.length > 0) tx.notifyChange()
    more ||= (expired[0]?.found ?? 0) > left
    for (const row of expired) {
      changed.push({ id: row.id, taskId: row.taskId, from: row.from, to: 'timed_out', run: row.run })
      if (row.parentId !== null && row.wakesParent === 1)
        await wake(tx, row.parentId, now, `child ${row.id} timed_out`)
    }
  } else {
    more = true
  }
  return { changed, more }
}

/**
 * `housekeep`: wakes waiting executions whose time came and times out queued or waiting ones
 * past their deadline (waking a parent that awaited one), at most `limit` rows, in one
 * transaction under `pg_try_advisory_xact_lock`: when another process is housekeeping right
 * now, nothing is done and `busy` is true (call again soon). `more`: rows were left due (call
 * again). Failure semantics: all or nothing; `StorageUnavailableError` when the database is
 * unreachable.
 */
export async function housekeep(
  database: PostgresDatabase,
  now: number,
  limit: number,
): Promise<HousekeepOutcome> {
  if (limit <= 0) return { changed: [], more: false, busy: false }
  return database.transaction(async (tx) => {
    const { locked } = (await tx.query<{ locked: boolean }>(TRY_LOCK, [HOUSEKEEP_LOCK_KEY.toString()]))
      .rows[0]!
    if (!locked) return { changed: [], more: false, busy: true }
    return { ...(await work(tx, now, limit)), busy: false }
  })
}
