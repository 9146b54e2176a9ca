import { ValidationError, type ChangeRow, type ChangesQuery } from '@ratchet/core'
import type { SqliteDb } from './database'

/**
 * `changesSince`: status rows of the history after a cursor, walked by seq (the rowid), each
 * joined to its execution by primary key for the task and tree filters. CROSS JOIN keeps the
 * history as the outer loop, so a task filter never turns it into a scan of the task's
 * executions. Seqs are rowids: one writer, so they are committed in increasing order, and the
 * cursor is the seq itself (`String(seq)`; `''` is before seq 1).
 */
export function prepareChangesSince(db: SqliteDb) {
  const statement = db.$client.prepare<
    [{ afterSeq: number; limit: number; taskId: string | null; rootId: string | null }],
    ChangeRow
  >(
    `SELECT CAST(h.seq AS TEXT) AS cursor, h.seq AS seq, h.execution_id AS executionId, e.task_id AS taskId,
            coalesce(e.root_id, e.id) AS rootId, e.parent_id AS parentId,
            h.from_status AS "from", h.to_status AS "to", h.attempt AS run, h.at AS at
     FROM execution_history h CROSS JOIN executions e ON e.id = h.execution_id
     WHERE h.seq > @afterSeq AND h.event = 'status'
       AND (@taskId IS NULL OR e.task_id = @taskId)
       AND (@rootId IS NULL OR e.root_id = @rootId OR e.id = @rootId)
     ORDER BY h.seq LIMIT @limit`,
  )
  return (query: ChangesQuery): ChangeRow[] =>
    statement.all({
      afterSeq: seqOfCursor(query.after),
      limit: query.limit,
      taskId: query.taskId ?? null,
      rootId: query.rootId ?? null,
    })
}

/**
 * `changeCursor`: the largest rowid of the history (any row, not only status changes), read
 * from the end of its b-tree; `''` when the history is empty.
 */
export function prepareChangeCursor(db: SqliteDb) {
  const statement = db.$client.prepare<[], { seq: number | null }>(
    'SELECT max(seq) AS seq FROM execution_history',
  )
  return (): string => {
    const { seq } = statement.get()!
    return seq === null ? '' : String(seq)
  }
}

/** The seq a cursor of this adapter stands for (0 for `''`). Throws `ValidationError` for another adapter's. */
function seqOfCursor(cursor: string): number {
  if (cursor === '') return 0
  if (!/^\d{1,20}$/.test(cursor))
    throw new ValidationError('after is not a change cursor of this (SQLite) database', [
      { path: ['after'], message: 'expected the cursor of a change read from this server' },
    ])
  return Number(cursor)
}
