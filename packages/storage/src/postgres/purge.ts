import { TERMINAL_STATUSES, type PurgeOutcome, type PurgeRequest } from '@ratchet/core'
import { sqlStrings } from './columns'
import { statement, type PostgresDatabase } from './database'

const TERMINAL = `(${sqlStrings(TERMINAL_STATUSES)})`

/** Roots read at a time per task. */
const ROOTS_PER_SCAN = 100
/** Members of a tree locked and read at a time while it is deleted. */
const MEMBERS_PER_READ = 100
/** Below every epoch-ms time and every UUID: where a task's scan of roots starts. */
const START = { finishedAt: Number.MIN_SAFE_INTEGER, id: '00000000-0000-0000-0000-000000000000' }

/** Every task id with executions: a loose index scan of executions_task_idx (one seek per task). */
const TASK_IDS = statement(
  'purge_task_ids',
  `WITH RECURSIVE t(task_id) AS (
     SELECT min(task_id) FROM executions
     UNION ALL
     SELECT (SELECT min(task_id) FROM executions WHERE task_id > t.task_id) FROM t WHERE t.task_id IS NOT NULL
   )
   SELECT task_id AS "taskId" FROM t WHERE task_id IS NOT NULL`,
)

/**
 * The roots of the trees that wrote the newest history row (by seq) and the newest change (by
 * (xid, seq), what `changeCursor` returns): kept, so neither goes back after a purge.
 */
const NEWEST_ROOTS = statement(
  'purge_newest_roots',
  `SELECT coalesce(e.root_id, e.id) AS root FROM executions e
    WHERE e.id = (SELECT execution_id FROM execution_history ORDER BY seq DESC LIMIT 1)
       OR e.id = (SELECT execution_id FROM execution_history WHERE event = 'status'
                   ORDER BY xid DESC, seq DESC LIMIT 1)`,
)

/**
 * One page of a task's finished roots past the cutoff, oldest first, from
 * executions_retention_idx (task_id, finished_at), after the (finished_at, id) of the last page.
 * A root with an unfinished member is passed over by the query itself.
 */
const ROOTS = statement(
  'purge_roots',
  `SELECT e.id, e.finished_at AS "finishedAt" FROM executions e
    WHERE e.task_id = $1 AND e.parent_id IS NULL AND e.finished_at IS NOT NULL AND e.finished_at < $2
      AND e.finished_at >= $3 AND (e.finished_at > $3 OR e.id > $4::uuid)
      AND e.status IN ${TERMINAL} AND e.id <> ALL($5::uuid[])
      AND NOT EXISTS (SELECT 1 FROM executions m WHERE m.root_id = e.id AND m.status NOT IN ${TERMINAL})
    ORDER BY e.finished_at, e.id
    LIMIT $6`,
)

/**
 * Locks a root that is still finished. SKIP LOCKED: a root another transaction holds (another
 * replica's purge, a rerun) is passed over this time.
 */
const LOCK_ROOT = statement(
  'purge_lock_root',
  `SELECT id FROM executions WHERE id = $1 AND status IN ${TERMINAL} FOR UPDATE SKIP LOCKED`,
)

/**
 * Locks the next members of a tree, newest first (children before the parents that made
 * them), and reads their statuses after the lock: a member rerun since the roots were read is
 * seen here, and the tree is left alone from there on.
 */
const LOCK_MEMBERS = statement(
  'purge_lock_members',
  `SELECT id, status FROM executions WHERE root_id = $1 ORDER BY id DESC LIMIT $2 FOR UPDATE`,
)

/**
 * Deletes one execution whole (its history, steps and signals, then its row) when all of it
 * fits in the budget `$2`, else nothing; returns what it counted and what it deleted. The
 * common case in one round trip.
 */
const DELETE_WHOLE = statement(
  'purge_delete_whole',
  `WITH n AS (
     SELECT (SELECT count(*) FROM execution_history WHERE execution_id = $1)
          + (SELECT count(*) FROM execution_steps WHERE execution_id = $1)
          + (SELECT count(*) FROM execution_signals WHERE execution_id = $1) + 1 AS rows
   ),
   h AS (DELETE FROM execution_history WHERE execution_id = $1 AND (SELECT rows FROM n) <= $2 RETURNING 1),
   s AS (DELETE FROM execution_steps WHERE execution_id = $1 AND (SELECT rows FROM n) <= $2 RETURNING 1),
   g AS (DELETE FROM execution_signals WHERE execution_id = $1 AND (SELECT rows FROM n) <= $2 RETURNING 1),
   x AS (DELETE FROM executions WHERE id = $1 AND (SELECT rows FROM n) <= $2 RETURNING 1)
   SELECT (SELECT rows FROM n) AS rows, (SELECT count(*) FROM h) AS history, (SELECT count(*) FROM s) AS steps,
          (SELECT count(*) FROM g) AS signals, (SELECT count(*) FROM x) AS executions`,
)

/** An execution larger than what is left of the budget: its dependents in order, `$2` at most. */
const DELETE_PART = {
  history: statement(
    'purge_delete_history',
    `DELETE FROM execution_history WHERE seq IN
       (SELECT seq FROM execution_history WHERE execution_id = $1 ORDER BY seq LIMIT $2)`,
  ),
  steps: statement(
    'purge_delete_steps',
    `DELETE FROM execution_steps WHERE execution_id = $1 AND position IN
       (SELECT position FROM execution_steps WHERE execution_id = $1 ORDER BY position LIMIT $2)`,
  ),
  signals: statement(
    'purge_delete_signals',
    `DELETE FROM execution_signals WHERE seq IN
       (SELECT seq FROM execution_signals WHERE execution_id = $1 ORDER BY seq LIMIT $2)`,
  ),
} as const

/** Events past the cutoff, oldest first, from events_created_idx; rows another purge holds are left to it. */
const DELETE_EVENTS = statement(
  'purge_delete_events',
  `DELETE FROM events WHERE id IN
     (SELECT id FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
)

/**
 * `purge`: deletes finished trees past their retention, and events past the default retention,
 * in one transaction of at most `limit` rows (every table's rows count), with the semantics of
 * the SQLite adapter's purge: each task's finished roots oldest first (task ids from a loose
 * scan, so tasks no longer registered go with the default retention); a tree's members before
 * its root, which goes last, so a tree larger than `limit` stays findable until its last row is
 * gone; each execution's history, steps and signals before its row (no foreign keys here: every
 * dependent is deleted explicitly); the tree holding the newest history row kept, so history
 * seqs and the change cursor never go back.
 *
 * Concurrency (READ COMMITTED, several replicas): a root is locked (`FOR UPDATE SKIP LOCKED`)
 * and each member locked before anything of it is deleted, with its status read after the
 * lock, so a tree rerun meanwhile is never deleted from; two purges share the work instead of
 * waiting on each other. Failure semantics: any error rolls back the whole call (nothing
 * deleted); a deadlock (with a rerun locking the same tree) reruns it (the transaction helper);
 * an unreachable database throws `StorageUnavailableError`.
 */
export function purge(database: PostgresDatabase, request: PurgeRequest): Promise<PurgeOutcome> {
  const limit = Math.max(1, Math.floor(request.limit))
  return database.transaction(async (tx) => {
    const out: PurgeOutcome = { executions: 0, history: 0, steps: 0, signals: 0, events: 0, more: false }
    let budget = limit
    const keep = (await tx.query<{ root: string }>(NEWEST_ROOTS)).rows.map((r) => r.root)

    /** Deletes what the budget allows of one locked execution; true when its row is gone too. */
    const deleteOne = async (id: string): Promise<boolean> => {
      if (budget <= 0) return false
      const whole = (
        await tx.query<{ rows: number; history: number; steps: number; signals: number; executions: number }>(
          DELETE_WHOLE,
          [id, budget],
        )
      ).rows[0]!
      if (whole.rows <= budget) {
        for (const key of ['history', 'steps', 'signals', 'executions'] as const) out[key] += whole[key]
        budget -= whole.history + whole.steps + whole.signals + whole.executions
        return true
      }
      for (const key of ['history', 'steps', 'signals'] as const) {
        const deleted = (await tx.query(DELETE_PART[key], [id, budget])).rowCount ?? 0
        out[key] += deleted
        budget -= deleted
        if (budget <= 0) return false
      }
      // Unreachable in practice (the rows counted above did not fit, so the budget ran out).
      return false
    }

    /** Deletes the tree of a locked root, members first; false when the budget ran out. */
    const deleteTree = async (root: string): Promise<boolean> => {
      for (;;) {
        const below = (
          await tx.query<{ id: string; status: string }>(LOCK_MEMBERS, [
            root,
            Math.min(MEMBERS_PER_READ, budget),
          ])
        ).rows
        if (below.length === 0) break
        for (const member of below) {
          // Rerun since the roots were read: the tree is live again; leave the rest of it.
          if (!(TERMINAL_STATUSES as readonly string[]).includes(member.status)) return true
          if (!(await deleteOne(member.id))) return false
        }
      }
      return (await deleteOne(root)) && budget > 0
    }

    outer: for (const { taskId } of (await tx.query<{ taskId: string }>(TASK_IDS)).rows) {
      const retention = Object.hasOwn(request.retentionByTask, taskId)
        ? request.retentionByTask[taskId]!
        : request.defaultRetentionMs
      if (retention === null) continue
      const cutoff = request.now - retention
      let after = START
      for (;;) {
        const due = (
          await tx.query<{ id: string; finishedAt: number }>(ROOTS, [
            taskId,
            cutoff,
            after.finishedAt,
            after.id,
            keep,
            ROOTS_PER_SCAN,
          ])
        ).rows
        for (const root of due) {
          after = root
          if ((await tx.query(LOCK_ROOT, [root.id])).rowCount !== 1) continue
          if (!(await deleteTree(root.id))) break outer
        }
        if (due.length < ROOTS_PER_SCAN) break
      }
    }
    if (budget > 0 && request.defaultRetentionMs !== null) {
      const deleted =
        (await tx.query(DELETE_EVENTS, [request.now - request.defaultRetentionMs, budget])).rowCount ?? 0
      out.events = deleted
      budget -= deleted
    }
    out.more = budget <= 0
    return out
  })
}

/**
 * `reclaimSpace`: nothing to do on PostgreSQL. Space of deleted rows is reclaimed by the
 * database itself: autovacuum marks it free for new rows of the same table (which is what keeps
 * the files from growing after purges), and only `VACUUM FULL` would give it back to the file
 * system, under an exclusive lock no live server should take. Returns `{ freedPages: 0,
 * freePages: 0 }` without touching the database; never fails.
 */
export function reclaimSpace(
  _database: PostgresDatabase,
  _maxPages: number,
): Promise<{ freedPages: number; freePages: number }> {
  return Promise.resolve({ freedPages: 0, freePages: 0 })
}
