import { ValidationError } from '@ratchet/core'

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
 * before the change's transaction is still running ({@link readPastWriters} waits a little for
 * those).
 */
export interface Position {
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

export const cursorOf = (position: Position) => `${position.xid}.${position.seq}`

/**
 * The feed's bound, as the CTE `bound(xid, xmax)`, and `held`, whether committed status rows
 * lie at or above it (visible, but not returned yet). Below `xid` every transaction that can have
 * written history in this database has ended. It is the statement snapshot's xmin
 * (`pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running) except that
 * transactions that cannot write this history are passed over: those of OTHER databases of the
 * cluster (xids are cluster-wide, and one long transaction elsewhere, a batch job or a test, must
 * not stall this feed) and autovacuum's (an ANALYZE holds an xid while it writes statistics).
 * Safe whatever the timing: an in-progress xid is passed over only when pg_stat_activity, read
 * after the snapshot, shows it held by such a backend (a backend never changes database or type,
 * and an xid is never reused within the statement); an xid it cannot place (ended meanwhile, a
 * prepared transaction) still bounds the feed. At most the snapshot's xmax: later transactions
 * are not visible to the statement at all. pg_stat_activity shows every session's database and
 * xid to any role (checked with an unprivileged one); it is read only while some transaction is
 * running, for about 0.25 ms.
 */
export const FEED_BOUND = `others AS MATERIALIZED (
     SELECT backend_xid FROM pg_stat_activity
      WHERE backend_xid IS NOT NULL
        AND (datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
             OR backend_type = 'autovacuum worker')
   ),
   bound AS (
     SELECT least(pg_snapshot_xmax(s),
                  (SELECT min(x) FROM pg_snapshot_xip(s) x WHERE x::xid NOT IN (SELECT backend_xid FROM others)))
            AS xid,
            pg_snapshot_xmax(s) AS xmax
       FROM pg_current_snapshot() s
   ),
   held AS (
     -- The newest visible status row, from the end of execution_history_changes_idx.
     SELECT coalesce((SELECT x.xid FROM execution_history x WHERE x.event = 'status'
                       ORDER BY x.xid DESC, x.seq DESC LIMIT 1) >= (SELECT xid FROM bound), false) AS held
   )`

/** What a feed statement reports beside its rows (one row of `bound` and `held`). */
export interface FeedRead<R> {
  rows: R[]
  /** The bound it read below, and the snapshot's xmax (xid8 as text). */
  bound: string
  xmax: string
  /** Committed status rows were left at or above the bound. */
  held: boolean
}

/** Waits between reads while changes committed before the first read are held back: 1 to 32 ms. */
const WAITS = 6

/**
 * Runs a feed read, and again (up to about 60 ms in all) while changes that had committed
 * before the first read are held back by transactions that were running then: those are
 * usually short (a claim, a settle), and nothing else would tell the reader when they end (a
 * transaction that writes no status row sends no `ratchet_change`). Stops as soon as every
 * transaction running at the first read has ended (the bound passed its xmax), or nothing is
 * held back. Past the wait it returns what it has, which is correct, only not the latest.
 */
export async function readPastWriters<R>(read: () => Promise<FeedRead<R>>): Promise<FeedRead<R>> {
  const first = await read()
  const target = BigInt(first.xmax)
  let latest = first
  for (let wait = 0; latest.held && BigInt(latest.bound) < target && wait < WAITS; wait++) {
    await new Promise((resolve) => setTimeout(resolve, 2 ** wait))
    latest = await read()
  }
  return latest
}
