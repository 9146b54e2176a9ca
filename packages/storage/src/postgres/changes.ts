import { ValidationError, type ChangeRow, type ChangesQuery } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'

/**
 * The change feed's cursor on PostgreSQL: `${xid}.${seq}`, the position of a status row in
 * (xid, seq) order. Seqs come from a sequence, so a transaction that took its seq earlier can
 * commit after a reader passed a larger one: ordering by seq alone would skip its row. The
 * 64-bit id of the writing transaction (`xid`, pg_current_xact_id(), on every history row)
 * fixes that: the feed returns only rows below the bound of {@link FEED_BOUND}, all of whose
 * transactions have ended, so no row can appear before a position already returned: every
 * transaction that can still write history has an xid at or above the bound.
 *
 * The price: a change is held back while a transaction of this database that took its xid
 * before the change's transaction is still running; a long-open writing transaction holds the
 * whole feed back until it ends.
 */
interface Position {
  xid: string
  seq: string
}

const CURSOR = /^(\d{1,20})(?:\.(\d{1,20}))?$/
const MAX_XID8 = 2n ** 64n - 1n
const MAX_SEQ = 2n ** 63n - 1n

/**
 * Reads a cursor: '' is before the first change; a bare `N` (a SQLite cursor) is `0.N`, before
 * every PostgreSQL change. Throws `ValidationError` for anything else the grammar
 * (`^\d{1,20}(\.\d{1,20})?$`) or the column types do not allow.
 */
export function parseChangeCursor(cursor: string): Position {
  if (cursor === '') return { xid: '0', seq: '0' }
  const match = CURSOR.exec(cursor)
  const [xid, seq] = match?.[2] === undefined ? ['0', match?.[1]] : [match[1]!, match[2]]
  if (!match || seq === undefined || BigInt(xid) > MAX_XID8 || BigInt(seq) > MAX_SEQ)
    throw new ValidationError('not a change cursor of this database', [
      { path: ['after'], message: 'expected a cursor returned by the change feed' },
    ])
  return { xid, seq }
}

const cursorOf = (position: Position) => `${position.xid}.${position.seq}`

/**
 * The feed's bound, as the CTE `bound(xid)`: below it every transaction that can have written
 * history in this database has ended. It is the statement snapshot's xmin
 * (`pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running) except that
 * transactions of OTHER databases of the cluster are passed over: xids are cluster-wide, and one
 * long transaction elsewhere (a batch job, a test) must not stall this feed. Safe whatever the
 * timing: an in-progress xid is passed over only when pg_stat_activity, read after the snapshot,
 * shows it held by a backend of another database (a backend never changes database, and an xid
 * is never reused within the statement); an xid it cannot place (ended meanwhile, a prepared
 * transaction, a session whose details are hidden) still bounds the feed. At most the snapshot's
 * xmax: later transactions are not visible to the statement at all.
 */
const FEED_BOUND = `others AS MATERIALIZED (
     SELECT backend_xid FROM pg_stat_activity
      WHERE backend_xid IS NOT NULL
        AND datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
   ),
   bound AS (
     SELECT least(pg_snapshot_xmax(s),
                  (SELECT min(x) FROM pg_snapshot_xip(s) x WHERE x::xid NOT IN (SELECT backend_xid FROM others)))
            AS xid
       FROM pg_current_snapshot() s
   )`

/**
 * Status rows after a position in (xid, seq) order, over execution_history_changes_idx
 * (xid, seq, partial on status rows), each looked up in executions by primary key for the task
 * and tree filters (a filter never drives the read: the feed walks the index from the cursor).
 */
const CHANGES = statement(
  'changes_since',
  `WITH ${FEED_BOUND}
   SELECT h.xid::text AS xid, h.seq, h.execution_id AS "executionId", e.task_id AS "taskId",
          coalesce(e.root_id, e.id) AS "rootId", e.parent_id AS "parentId",
          h.from_status AS "from", h.to_status AS "to", h.attempt AS run, h.at
     FROM execution_history h
     -- LIMIT 1 keeps the subquery a per-row lookup: a join would let a generic plan hash it
     -- against a scan of every execution.
     CROSS JOIN LATERAL (
       SELECT e.id, e.task_id, e.root_id, e.parent_id FROM executions e WHERE e.id = h.execution_id LIMIT 1
     ) e
    WHERE h.event = 'status'
      AND (h.xid, h.seq) > ($1::xid8, $2::int8)
      AND h.xid < (SELECT xid FROM bound)
      AND ($3::text IS NULL OR e.task_id = $3)
      AND ($4::uuid IS NULL OR e.root_id = $4 OR e.id = $4)
    ORDER BY h.xid, h.seq
    LIMIT $5`,
)

/**
 * `changesSince`: status transitions after the cursor `after`, in cursor order, at most
 * `limit`, optionally of one task or one tree. A reader that resumes after the last cursor it
 * saw misses nothing and sees nothing twice (see the cursor above). One autocommitted
 * statement. Failure semantics: a malformed cursor throws `ValidationError`; an unreachable
 * database throws `StorageUnavailableError`.
 */
export async function changesSince(database: PostgresDatabase, query: ChangesQuery): Promise<ChangeRow[]> {
  const after = parseChangeCursor(query.after)
  // An id that is not a UUID names no tree: nothing of it can change.
  if (query.rootId !== undefined && !isStoredId(query.rootId)) return []
  const result = await database.query<Omit<ChangeRow, 'cursor'> & { xid: string }>(CHANGES, [
    after.xid,
    after.seq,
    query.taskId ?? null,
    query.rootId ?? null,
    query.limit,
  ])
  return result.rows.map(({ xid, ...row }) => ({ ...row, cursor: cursorOf({ xid, seq: String(row.seq) }) }))
}

/**
 * The last position the feed would return now: the (xid, seq) index read backwards from its end.
 * Ordered by the qualified columns: a bare `xid` in ORDER BY would be the text output column.
 */
const LAST = statement(
  'change_cursor',
  `WITH ${FEED_BOUND}
   SELECT h.xid::text AS xid, h.seq::text AS seq
     FROM execution_history h
    WHERE h.event = 'status' AND h.xid < (SELECT xid FROM bound)
    ORDER BY h.xid DESC, h.seq DESC
    LIMIT 1`,
)

/**
 * `changeCursor`: the cursor of the latest change `changesSince` can return now ('' when none),
 * cheap, for change detection: `changesSince({ after: changeCursor() })` returns exactly the
 * changes readable later. Counts status transitions only (in-run events are not in the feed).
 * Failure semantics: an unreachable database throws `StorageUnavailableError`.
 */
export async function changeCursor(database: PostgresDatabase): Promise<string> {
  const [last] = (await database.query<Position>(LAST)).rows
  return last ? cursorOf(last) : ''
}
