import type { ClaimOutcome, ClaimRequest, ExecutionRow } from '@ratchet/core'
import { executionColumns } from './columns'
import { DATABASE_NOW, statement, type PostgresDatabase } from './database'
import { CHANGE_CHANNEL } from './notify-channels'
import { QUEUED_LEVELS } from './queued-levels'
import { NOT_PAUSED } from './task-queues'

/**
 * The claim, one autocommitted statement:
 * 0. `tasks`: the caller's tasks with their turns, but paused ones (`task_queues`).
 * 1. `levels`: per task, the distinct priorities of its queued executions, highest first (a
 *    skip-scan of `executions_claim_idx`: one probe per priority, see queued-levels.ts), so that
 * 2. `candidates`: each (task, priority) is read in run_at order and stops at the first row not
 *    yet due (`run_at <= now` is a range of the index there): future rows are never read,
 *    whatever their number. Each reads up to `$9` rows (a few times `limit`), without locking.
 * 3. `ranked`: the candidates in claim order, as on SQLite: priority first, then round-robin
 *    across tasks (each task's rows by rank; at equal rank, by the task's turn in this process's
 *    rotation), then oldest run_at, then id. A level cut at `$9 >= limit` rows cannot change
 *    the first `limit` places. As one array of row addresses (`ctid`), in that order.
 * 4. `chosen`: walks them in that order; for each, a subquery of its own fetches the row by its
 *    address and version (`ctid` and `xmin`: the very row version read as a candidate, so still
 *    queued and due) and locks it `FOR NO KEY UPDATE SKIP LOCKED`; the walk stops once it holds
 *    `limit` (rows are locked as the limit pulls them): exactly the rows it claims are locked,
 *    and rows another claimer is taking are passed over (not waited for), so concurrent
 *    claimers split the due rows between them. A row updated since it was read is another
 *    version and is passed over too. The subquery has no condition an index could serve, so
 *    every plan fetches by address (a TID scan): a join on id, or on the address with the
 *    status and run_at conditions beside it, was planned under the generic plan as a scan of
 *    every due row per claim (a hash join), or per candidate (a nested loop over the due
 *    index, when the plan was made on an empty table): 20,000 and 2,000,000 rows read to claim
 *    100 of 20,000 due.
 * 5. `claimed`: queued → running with a lease (on the database's clock unless `caller`), by the
 *    address of the row as locked (a lock does not move a row); `history`: their
 *    `queued → running` rows; and `ratchet_change` is sent if any was claimed.
 * 6. The result: the claimed rows, each with the number of candidates read, or one row of nulls
 *    with that number when none was claimed (so the caller can tell "none left" from "all
 *    passed over").
 */
export const CLAIM = statement(
  'claim',
  `WITH RECURSIVE
   tasks AS (SELECT * FROM unnest($1::text[], $2::int[]) AS t(task_id, turn) WHERE ${NOT_PAUSED}),
   ${QUEUED_LEVELS},
   candidates AS (
     SELECT c.id, c.tid, c.txmin, l.task_id, l.turn, l.priority, c.run_at
       FROM levels l
       CROSS JOIN LATERAL (
         SELECT e.id, e.ctid AS tid, e.xmin AS txmin, e.run_at FROM executions e
          WHERE e.status = 'queued' AND e.task_id = l.task_id AND e.priority = l.priority AND e.run_at <= $3
          ORDER BY e.run_at, e.id
          LIMIT $9
       ) c
      WHERE l.priority IS NOT NULL
   ),
   ranked AS (
     SELECT array_agg(tid ORDER BY priority DESC, rank, turn, run_at, id) AS tids,
            array_agg(txmin ORDER BY priority DESC, rank, turn, run_at, id) AS txmins,
            array_agg(turn ORDER BY priority DESC, rank, turn, run_at, id) AS turns
       FROM (SELECT id, tid, txmin, turn, priority, run_at,
                    row_number() OVER (PARTITION BY task_id ORDER BY priority DESC, run_at, id) AS rank
               FROM candidates) r
   ),
   chosen AS (
     SELECT x.id, x.tid, r.ord, r.turn
       FROM unnest((SELECT tids FROM ranked), (SELECT txmins FROM ranked), (SELECT turns FROM ranked))
              WITH ORDINALITY AS r(tid, txmin, turn, ord)
       CROSS JOIN LATERAL (
         SELECT e.id, e.ctid AS tid FROM executions e
          WHERE e.ctid = r.tid AND e.xmin = r.txmin
          FOR NO KEY UPDATE SKIP LOCKED
       ) x
      ORDER BY r.ord
      LIMIT $4
   ),
   claimed AS (
     UPDATE executions e
        SET status = 'running', attempt = e.attempt + 1, claimed_at = $3, lease_owner = $5,
            lease_expires_at = coalesce($6::bigint, ${DATABASE_NOW}) + $7::bigint,
            started_at = coalesce(e.started_at, $3), updated_at = $3, wake_pending = 0
       FROM chosen c
      WHERE e.ctid = c.tid
     RETURNING ${executionColumns('e.')}, c.ord AS "claimOrder", c.turn AS "claimTurn"
   ),
   history AS (
     INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
     SELECT id, $3, 'queued', 'running', runs, $8 FROM claimed ORDER BY "claimOrder"
   )
   SELECT claimed.*, k.n AS "candidateCount"
     FROM (SELECT count(*)::int AS n FROM candidates) k
     LEFT JOIN claimed ON true
     CROSS JOIN (SELECT CASE WHEN EXISTS (SELECT 1 FROM claimed) THEN pg_notify('${CHANGE_CHANNEL}', '') END) notified`,
)

/**
 * Candidates read per (task, priority): `limit` would do for one claimer; the margin lets a
 * claimer find enough rows past the ones concurrent claimers (other replicas) are taking.
 */
const candidatesPerLevel = (limit: number) => limit * 4

/** A claimed row; or, when nothing was claimed, one row of nulls but the candidate count. */
type ClaimedRow = ExecutionRow & { claimOrder: number; claimTurn: number; candidateCount: number }

/**
 * `claim`: queued → running for up to `limit` due executions of `taskIds`, in claim order
 * (see CLAIM), in one statement, with their history rows. No housekeeping here: waking due
 * waiters and expiring deadlines is `housekeep`'s. The round-robin rotation is this process's
 * own (each replica is fair over what it claims). Failure semantics: all or nothing;
 * `StorageUnavailableError` when the database is unreachable.
 */
/**
 * CLAIM's parameters: `start` is where this process's round-robin starts in `taskIds`;
 * `leaseNow` null means the database's clock.
 */
export function claimValues(request: ClaimRequest, start: number, leaseNow: number | null): unknown[] {
  const n = request.taskIds.length
  return [
    request.taskIds,
    request.taskIds.map((_, i) => (i - start + n) % n),
    request.now,
    request.limit,
    request.owner,
    leaseNow,
    request.leaseMs,
    JSON.stringify({ worker: request.owner }),
    candidatesPerLevel(request.limit),
  ]
}

export function prepareClaim(database: PostgresDatabase) {
  // Where the round-robin starts: after the last task served, so small batches (one free
  // slot at a time) rotate through the tasks too.
  let nextTurn = 0
  return async (request: ClaimRequest): Promise<ClaimOutcome> => {
    const { taskIds } = request
    if (request.limit <= 0 || taskIds.length === 0) return { claimed: [], drained: false }
    const n = taskIds.length
    const start = nextTurn % n
    const result = await database.query<ClaimedRow>(
      CLAIM,
      claimValues(request, start, database.leaseNow(request.now)),
    )
    const candidates = result.rows[0]?.candidateCount ?? 0
    // RETURNING gives no order; start them in claim order.
    const rows = result.rows.filter((r) => r.id !== null).sort((a, b) => a.claimOrder - b.claimOrder)
    const last = rows.at(-1)
    if (last) nextTurn = (start + last.claimTurn + 1) % n
    return {
      claimed: rows.map(({ claimOrder: _o, claimTurn: _t, candidateCount: _c, ...row }) => row),
      // Every due row read was claimed, and fewer than a level's cut ($9 > limit): none left.
      drained: rows.length < request.limit && rows.length === candidates,
    }
  }
}
