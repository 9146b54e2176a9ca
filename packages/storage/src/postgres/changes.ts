import {
  ValidationError,
  type ChangeRow as PortChangeRow,
  type ChangesQuery as PortChangesQuery,
} from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'

/**
 * The change feed's cursor on PostgreSQL: `${xid}.${seq}`, the position of a status row in
 * (xid, seq) order. Seqs come from a sequence, so a transaction that began earlier can commit a
 * smaller seq after a reader passed a larger one: ordering by seq alone would skip it. The
 * 64-bit id of the writing transaction (`xid`, pg_current_xact_id()) fixes that: the feed
 * returns only rows of transactions older than every transaction still running
 * (`xid < pg_snapshot_xmin(pg_current_snapshot())`), all of which have ended, so no row can
 * ever appear before a position already returned. Every transaction that will still write has
 * an xid at or above that bound, so its rows come after every cursor handed out.
 *
 * The price: a change is delayed while any transaction that began before its own is still
 * running, in any database of the cluster (xids are cluster-wide), and a long-open
 * transaction holds the whole feed back until it ends.
 */
/**
 * The port's shapes after its change 2 (i12-srv: a string cursor instead of `afterSeq`, and a
 * `cursor` on each row), implemented here ahead of it; replaced by core's types once merged.
 */
type ChangesQuery = Omit<PortChangesQuery, 'afterSeq'> & { after: string }
type ChangeRow = PortChangeRow & { cursor: string }

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
 * Status rows after a position in (xid, seq) order, over execution_history_changes_idx
 * (xid, seq, partial on status rows), each joined to its execution by primary key for the task
 * and tree filters (a filter never drives the read: the feed walks the index from the cursor).
 */
const CHANGES = statement(
  'changes_since',
  `SELECT h.xid::text AS xid, h.seq, h.execution_id AS "executionId", e.task_id AS "taskId",
          coalesce(e.root_id, e.id) AS "rootId", e.parent_id AS "parentId",
          h.from_status AS "from", h.to_status AS "to", h.attempt AS run, h.at
     FROM execution_history h
     JOIN executions e ON e.id = h.execution_id
    WHERE h.event = 'status'
      AND (h.xid, h.seq) > ($1::xid8, $2::int8)
      AND h.xid < pg_snapshot_xmin(pg_current_snapshot())
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
export async function changesSince(
  database: PostgresDatabase,
  query: ChangesQuery | PortChangesQuery,
): Promise<ChangeRow[]> {
  // Until the port's change 2 is merged, the port still passes `afterSeq` (a bare seq).
  const after = parseChangeCursor('after' in query ? query.after : String(query.afterSeq))
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

/** The last position the feed would return now: the (xid, seq) index read backwards from its end. */
const LAST = statement(
  'change_cursor',
  `SELECT xid::text AS xid, seq::text AS seq
     FROM execution_history
    WHERE event = 'status' AND xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid DESC, seq DESC
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
