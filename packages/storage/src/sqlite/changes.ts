import type { ChangeRow, ChangesQuery } from '@ratchet/core'
import type { SqliteDb } from './database'

/**
 * `changesSince`: status rows of the history after a seq, walked by seq (the rowid), each
 * joined to its execution by primary key for the task and tree filters. CROSS JOIN keeps the
 * history as the outer loop, so a task filter never turns it into a scan of the task's
 * executions. Seqs are rowids: one writer, so they are committed in increasing order.
 */
export function prepareChangesSince(db: SqliteDb) {
  const statement = db.$client.prepare<
    [{ afterSeq: number; limit: number; taskId: string | null; rootId: string | null }],
    ChangeRow
  >(
    `SELECT h.seq AS seq, h.execution_id AS executionId, e.task_id AS taskId,
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
      afterSeq: query.afterSeq,
      limit: query.limit,
      taskId: query.taskId ?? null,
      rootId: query.rootId ?? null,
    })
}

/** `lastSeq`: the largest rowid of the history, read from the end of its b-tree. */
export function prepareLastSeq(db: SqliteDb) {
  const statement = db.$client.prepare<[], { seq: number }>(
    'SELECT coalesce(max(seq), 0) AS seq FROM execution_history',
  )
  return (): number => statement.get()!.seq
}
