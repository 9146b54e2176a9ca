import type { ChangeRow, ChangesQuery } from '@ratchet/core'
import {
  cursorOf,
  FEED_BOUND,
  parseChangeCursor,
  readPastWriters,
  type FeedRead,
  type Position,
} from './change-bound'
import { statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'

/** The row of `bound` and `held`, joined to each row of the page (or alone, when it is empty). */
const BOUND_COLUMNS = `b.xid::text AS bound, b.xmax::text AS xmax, (SELECT held FROM held) AS held`

type Row<T> = T & { bound: string; xmax: string; held: boolean }

/** The statement's rows as a `FeedRead`: the bound's columns taken off, the empty page's row dropped. */
function feedRead<T extends { seq: unknown }, R>(rows: Row<Partial<T>>[], map: (row: T) => R): FeedRead<R> {
  const out: FeedRead<R> = { bound: rows[0]!.bound, xmax: rows[0]!.xmax, held: rows[0]!.held, rows: [] }
  for (const { bound: _b, xmax: _x, held: _h, ...row } of rows)
    if (row.seq != null) out.rows.push(map(row as unknown as T))
  return out
}

/**
 * Status rows after a position in (xid, seq) order, over execution_history_changes_idx
 * (xid, seq, partial on status rows), each looked up in executions by primary key for the task
 * and tree filters (a filter never drives the read: the feed walks the index from the cursor).
 */
const CHANGES = statement(
  'changes_since',
  `WITH ${FEED_BOUND},
   page AS (
     SELECT h.xid, h.seq, h.execution_id, e.task_id, coalesce(e.root_id, e.id) AS root_id, e.parent_id,
            h.from_status, h.to_status, h.attempt, h.at
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
      LIMIT $5
   )
   SELECT ${BOUND_COLUMNS}, p.xid::text AS xid, p.seq, p.execution_id AS "executionId", p.task_id AS "taskId",
          p.root_id AS "rootId", p.parent_id AS "parentId", p.from_status AS "from", p.to_status AS "to",
          p.attempt AS run, p.at
     FROM bound b LEFT JOIN page p ON true
    ORDER BY p.xid, p.seq`,
)

/**
 * `changesSince`: status transitions after the cursor `after`, in cursor order, at most
 * `limit`, optionally of one task or one tree. A reader that resumes after the last cursor it
 * saw misses nothing and sees nothing twice (see change-bound.ts); changes committed before the
 * call but held back by a transaction still running then are waited for a little
 * (`readPastWriters`). Failure semantics: a malformed cursor throws `ValidationError`; an
 * unreachable database throws `StorageUnavailableError`; nothing is written.
 */
export async function changesSince(database: PostgresDatabase, query: ChangesQuery): Promise<ChangeRow[]> {
  const after = parseChangeCursor(query.after)
  // An id that is not a UUID names no tree: nothing of it can change.
  if (query.rootId !== undefined && !isStoredId(query.rootId)) return []
  const values = [after.xid, after.seq, query.taskId ?? null, query.rootId ?? null, query.limit]
  const { rows } = await readPastWriters(async () =>
    feedRead(
      (await database.query<Row<Partial<Omit<ChangeRow, 'cursor'> & { xid: string }>>>(CHANGES, values)).rows,
      ({ xid, ...row }: Omit<ChangeRow, 'cursor'> & { xid: string }): ChangeRow => ({
        ...row,
        cursor: cursorOf({ xid, seq: String(row.seq) }),
      }),
    ),
  )
  return rows
}

/**
 * The last position the feed would return now: the (xid, seq) index read backwards from its end.
 * Ordered by the qualified columns: a bare `xid` in ORDER BY would be the text output column.
 */
const LAST = statement(
  'change_cursor',
  `WITH ${FEED_BOUND},
   last AS (
     SELECT h.xid, h.seq FROM execution_history h
      WHERE h.event = 'status' AND h.xid < (SELECT xid FROM bound)
      ORDER BY h.xid DESC, h.seq DESC
      LIMIT 1
   )
   SELECT ${BOUND_COLUMNS}, l.xid::text AS xid, l.seq::text AS seq FROM bound b LEFT JOIN last l ON true`,
)

/**
 * `changeCursor`: the cursor of the latest change `changesSince` can return now ('' when none),
 * cheap, for change detection: `changesSince({ after: changeCursor() })` returns exactly the
 * changes readable later. Counts status transitions only (in-run events are not in the feed).
 * Waits for held-back changes as `changesSince` does. Failure semantics: an unreachable database
 * throws `StorageUnavailableError`.
 */
export async function changeCursor(database: PostgresDatabase): Promise<string> {
  const { rows } = await readPastWriters(async () =>
    feedRead((await database.query<Row<Partial<Position>>>(LAST)).rows, (row: Position) => row),
  )
  return rows[0] ? cursorOf(rows[0]) : ''
}
