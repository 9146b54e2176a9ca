import type { PurgeOutcome, PurgeRequest } from '@ratchet/core'
import type { SqliteDb } from './database'

const TERMINAL = `('completed', 'failed', 'cancelled', 'timed_out')`

/** Roots read at a time per task. */
const ROOTS_PER_SCAN = 100
/** How much later than its clock time an id's time may be (ids.ts: a clock that goes back up to 10 s). */
const ID_CLOCK_CARRY_MS = 10_000
/** Members of a tree read at a time while it is deleted. */
const MEMBERS_PER_READ = 100

/**
 * The smallest event id (UUIDv7, lower-case hyphenated) made at or after `ms`: every event
 * created before `ms` has an id that sorts below it.
 */
export function eventIdBound(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-`
}

/**
 * `purge`: deletes finished trees past their retention, in one transaction of at most `limit`
 * rows. Roots come from `executions_retention_idx` (each task's finished roots by finished_at;
 * the task ids themselves from a loose scan of `executions_task_idx`, so tasks no longer
 * registered are purged with the default retention). A root with an unfinished member (a
 * spawned child still running) is passed over by the query itself, so it cannot hold up the
 * roots behind it. Each execution's history, steps and signals are deleted in chunks before
 * its row (the foreign keys' cascades would work too, but their rows are not counted and not
 * bounded); a tree's members before its root, which goes last.
 *
 * The tree holding the newest history row (the largest seq) is kept, however old: history
 * seqs are rowids, which SQLite makes one more than the largest left in the table, so deleting
 * the newest rows would hand their seqs out again, and a change stream resuming after one of
 * them (Last-Event-ID) would skip the new changes, and `changeCursor` would go back. No tombstone
 * row can stand in for it: a history row must name an existing execution (foreign key). The
 * kept tree goes in the first purge after anything else writes history. Costs one read of the
 * history's last row per batch, nothing per insert (unlike AUTOINCREMENT).
 */
export function preparePurge(db: SqliteDb) {
  const client = db.$client
  const taskIds = client
    .prepare(
      `WITH RECURSIVE t(task_id) AS (
         SELECT MIN(task_id) FROM executions
         UNION ALL
         SELECT (SELECT MIN(task_id) FROM executions WHERE task_id > t.task_id) FROM t WHERE t.task_id IS NOT NULL
       )
       SELECT task_id AS taskId FROM t WHERE task_id IS NOT NULL`,
    )
    .pluck()
  const roots = client
    .prepare(
      `SELECT e.id FROM executions e INDEXED BY executions_retention_idx
       WHERE e.task_id = @taskId AND e.parent_id IS NULL AND e.finished_at IS NOT NULL
         AND e.finished_at < @cutoff AND e.status IN ${TERMINAL} AND e.id IS NOT @keep
         AND NOT EXISTS (SELECT 1 FROM executions m WHERE m.root_id = e.id AND m.status NOT IN ${TERMINAL})
       ORDER BY e.finished_at LIMIT @limit`,
    )
    .pluck()
  // The root of the execution that wrote the newest history row: the history's last rowid,
  // then its execution by primary key.
  const newestRoot = client
    .prepare(
      `SELECT coalesce(e.root_id, e.id) FROM execution_history h CROSS JOIN executions e ON e.id = h.execution_id
       WHERE h.seq = (SELECT max(seq) FROM execution_history)`,
    )
    .pluck()
  const members = client
    .prepare(`SELECT id FROM executions WHERE root_id = ? ORDER BY id DESC LIMIT ?`)
    .pluck()
  const deleteHistory = client.prepare(
    `DELETE FROM execution_history WHERE seq IN
       (SELECT seq FROM execution_history WHERE execution_id = @id ORDER BY seq LIMIT @limit)`,
  )
  const deleteSteps = client.prepare(
    `DELETE FROM execution_steps WHERE execution_id = @id AND position IN
       (SELECT position FROM execution_steps WHERE execution_id = @id ORDER BY position LIMIT @limit)`,
  )
  const deleteSignals = client.prepare(
    `DELETE FROM execution_signals WHERE seq IN
       (SELECT seq FROM execution_signals WHERE execution_id = @id ORDER BY seq LIMIT @limit)`,
  )
  const deleteExecution = client.prepare(`DELETE FROM executions WHERE id = ?`)
  const deleteEvents = client.prepare(
    `DELETE FROM events WHERE id IN
       (SELECT id FROM events WHERE id < @bound AND created_at < @cutoff ORDER BY id LIMIT @limit)`,
  )

  const run = (request: PurgeRequest): PurgeOutcome => {
    const limit = Math.max(1, Math.floor(request.limit))
    const out: PurgeOutcome = { executions: 0, history: 0, steps: 0, signals: 0, events: 0, more: false }
    let budget = limit
    const keep = (newestRoot.get() as string | undefined) ?? null

    /** Deletes what the budget allows of one execution; true when its row is gone too. */
    const deleteOne = (id: string): boolean => {
      for (const [statement, key] of [
        [deleteHistory, 'history'],
        [deleteSteps, 'steps'],
        [deleteSignals, 'signals'],
      ] as const) {
        if (budget <= 0) return false
        const deleted = statement.run({ id, limit: budget }).changes
        out[key] += deleted
        budget -= deleted
        if (budget <= 0) return false
      }
      out.executions += deleteExecution.run(id).changes
      budget--
      return true
    }

    outer: for (const taskId of taskIds.all() as string[]) {
      const retention = Object.hasOwn(request.retentionByTask, taskId)
        ? request.retentionByTask[taskId]!
        : request.defaultRetentionMs
      if (retention === null) continue
      const cutoff = request.now - retention
      for (;;) {
        const due = roots.all({ taskId, cutoff, keep, limit: ROOTS_PER_SCAN }) as string[]
        for (const root of due) {
          for (;;) {
            const below = members.all(root, MEMBERS_PER_READ) as string[]
            if (below.length === 0) break
            for (const id of below) if (!deleteOne(id)) break outer
          }
          if (!deleteOne(root) || budget <= 0) break outer
        }
        if (due.length < ROOTS_PER_SCAN) break
      }
    }
    if (budget > 0 && request.defaultRetentionMs !== null) {
      const cutoff = request.now - request.defaultRetentionMs
      // Ids are time-ordered, but an id may carry a time up to 10 s later than its event's
      // (see ids.ts): the id range finds the candidates through the primary key, created_at decides.
      const bound = eventIdBound(cutoff + ID_CLOCK_CARRY_MS)
      const events = deleteEvents.run({ bound, cutoff, limit: budget }).changes
      out.events = events
      budget -= events
    }
    out.more = budget <= 0
    return out
  }
  return client.transaction(run)
}

/** `reclaimSpace`: `PRAGMA incremental_vacuum(maxPages)`, then the free pages left. */
export function prepareReclaimSpace(db: SqliteDb) {
  const client = db.$client
  return (maxPages: number): { freedPages: number; freePages: number } => {
    const before = client.pragma('freelist_count', { simple: true }) as number
    if (before > 0) client.pragma(`incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`)
    const after = client.pragma('freelist_count', { simple: true }) as number
    return { freedPages: before - after, freePages: after }
  }
}
