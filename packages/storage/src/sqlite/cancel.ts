import {
  CANCELLABLE_STATUSES,
  isTerminalStatus,
  type CancelOutcome,
  type ExecutionStatus,
} from '@ratchet/core'
import { eq, sql } from 'drizzle-orm'
import type { SqliteDb } from './database'
import { executions } from './schema'
import type { AppendHistory } from './history'
import type { Wake } from './wake'

const cancellable = CANCELLABLE_STATUSES.map((s) => `'${s}'`).join(', ')

/** One execution a cancel reached, as it was before. */
export interface CancelledRow {
  id: string
  taskId: string
  run: number
  cancelledFrom: ExecutionStatus
}

/**
 * Cancels unfinished executions and every unfinished descendant of theirs (a recursive walk
 * down `parent_id`, on `executions_parent_idx`), appending a history row for each. Runs inside
 * the caller's transaction. Two entry points: a whole subtree (`cancel`), and the children a
 * parent awaited (`ctx.child`) that were still unfinished when it ended, with their subtrees;
 * spawned children (`ctx.spawn`) outlive their parent.
 */
export function prepareCancelTree(db: SqliteDb, appendHistory: AppendHistory) {
  const client = db.$client
  type Row = { id: string; taskId: string; status: ExecutionStatus; run: number }
  // CROSS JOIN fixes the order: walk the tree, then look each id up by primary key. Left to
  // itself SQLite may read every unfinished execution through the status index instead,
  // which is a scan of the whole backlog on each parent's end.
  const walk = (start: string) =>
    client.prepare<[string], Row>(
      `WITH RECURSIVE tree(id) AS (
         ${start}
         UNION ALL
         SELECT e.id FROM executions e JOIN tree ON e.parent_id = tree.id
       )
       SELECT e.id, e.task_id AS taskId, e.status, e.attempt AS run FROM tree CROSS JOIN executions e ON e.id = tree.id
        WHERE e.status IN (${cancellable})`,
    )
  const subtree = walk('SELECT ?')
  const awaited = walk(
    `SELECT id FROM executions WHERE parent_id = ? AND wakes_parent = 1 AND status IN (${cancellable})`,
  )
  const cancel = client.prepare<[{ error: string; now: number; id: string }]>(
    `UPDATE executions SET status = 'cancelled', error = @error, lease_owner = NULL, lease_expires_at = NULL,
            finished_at = @now, updated_at = @now
      WHERE id = @id AND status IN (${cancellable})`,
  )
  const apply = (rows: Row[], now: number, errorOf: (id: string) => string): CancelledRow[] => {
    const cancelled: CancelledRow[] = []
    for (const row of rows) {
      const error = errorOf(row.id)
      if (cancel.run({ error, now, id: row.id }).changes === 0) continue
      appendHistory({
        executionId: row.id,
        at: now,
        fromStatus: row.status,
        toStatus: 'cancelled',
        run: row.run,
        detail: `{"error":${error}}`,
      })
      cancelled.push({ id: row.id, taskId: row.taskId, run: row.run, cancelledFrom: row.status })
    }
    return cancelled
  }
  return {
    /** The execution `id` (with `error`) and its whole unfinished subtree (with `descendantError`). */
    subtree: (id: string, now: number, error: string, descendantError: string) =>
      apply(subtree.all(id), now, (row) => (row === id ? error : descendantError)),
    /** The unfinished children `parentId` awaited, with their subtrees. */
    awaitedChildren: (parentId: string, now: number, error: string) =>
      apply(awaited.all(parentId), now, () => error),
  }
}

export type CancelTree = ReturnType<typeof prepareCancelTree>

/**
 * `cancel`: the execution and every unfinished descendant → cancelled, in one transaction. A
 * waiting parent of the cancelled execution that is not itself cancelled is woken, so its
 * `ctx.child` rejects.
 */
export function prepareCancel(db: SqliteDb, cancelTree: CancelTree, wake: Wake) {
  const byId = db
    .select()
    .from(executions)
    .where(eq(executions.id, sql.placeholder('id')))
    .prepare()
  const read = (id: string) => byId.get({ id })
  const run = db.$client.transaction(
    (id: string, now: number, error: string, descendantError: string): CancelOutcome | undefined => {
      const before = read(id)
      if (!before) return undefined
      // A finished execution is left alone, and so is what it started (a spawned child lives on).
      if (isTerminalStatus(before.status)) return { row: before, cancelledFrom: null, descendants: [] }
      const cancelled = cancelTree.subtree(id, now, error, descendantError)
      const self = cancelled.find((c) => c.id === id)
      if (!self) return { row: before, cancelledFrom: null, descendants: [] }
      if (before.parentId !== null && before.wakesParent === 1)
        wake(before.parentId, now, `child ${id} cancelled`)
      return {
        row: read(id)!,
        cancelledFrom: self.cancelledFrom,
        descendants: cancelled.filter((c) => c.id !== id),
      }
    },
  )
  return (id: string, now: number, error: string, descendantError = error) =>
    run(id, now, error, descendantError)
}
