import { and, asc, eq, gt, or, sql } from 'drizzle-orm'
import { WAIT_FOREVER, type HistoryQuery, type HistoryRow } from '@ratchet/core'
import type { SqliteDb } from './database'
import { executionHistory, executions } from './schema'

/** `get`: one execution by id. */
export function prepareGet(db: SqliteDb) {
  const statement = db
    .select()
    .from(executions)
    .where(eq(executions.id, sql.placeholder('id')))
    .prepare()
  return (id: string) => statement.get({ id })
}

/** `history`: the execution's rows in order, all of them or those after a seq, up to a limit. */
export function prepareHistory(db: SqliteDb) {
  const statement = db
    .select()
    .from(executionHistory)
    .where(
      and(
        eq(executionHistory.executionId, sql.placeholder('id')),
        gt(executionHistory.seq, sql.placeholder('afterSeq')),
        or(eq(sql.placeholder('statusOnly'), 0), eq(executionHistory.event, 'status')),
      ),
    )
    .orderBy(asc(executionHistory.seq))
    .limit(sql.placeholder('limit'))
    .prepare()
  return (id: string, options: HistoryQuery = {}): HistoryRow[] =>
    statement
      .all({
        id,
        afterSeq: options.afterSeq ?? -1,
        statusOnly: options.statusOnly ? 1 : 0,
        // SQLite: a negative LIMIT is no limit.
        limit: options.limit ?? -1,
      })
      .map((r) => ({
        seq: r.seq,
        executionId: r.executionId,
        at: r.at,
        from: r.fromStatus,
        to: r.toStatus,
        run: r.run,
        detail: r.detail,
        event: r.event,
        name: r.name,
      }))
}

/**
 * `nextRunAt`: the earliest time something is due for these tasks: a queued execution's
 * run_at, a waiting one's wake time, or a deadline. Raw SQL because each part must walk its
 * partial index (INDEXED BY, which drizzle cannot express); without it SQLite scans every
 * queued row. The task list is bound as JSON, so one statement serves all.
 */
export function prepareNextRunAt(db: SqliteDb) {
  const none = WAIT_FOREVER
  // min() of SQLite returns NULL if any argument is NULL: each part falls back to `none`.
  const statement = db.$client.prepare<[{ ids: string }], { runAt: number }>(
    `SELECT min(
       coalesce((SELECT run_at FROM executions INDEXED BY executions_due_idx
         WHERE status = 'queued' AND task_id IN (SELECT value FROM json_each(@ids)) ORDER BY run_at LIMIT 1), ${none}),
       coalesce((SELECT run_at FROM executions INDEXED BY executions_waiting_due_idx
         WHERE status = 'waiting' AND run_at < ${none} AND task_id IN (SELECT value FROM json_each(@ids))
         ORDER BY run_at LIMIT 1), ${none}),
       coalesce((SELECT deadline_at FROM executions INDEXED BY executions_deadline_idx
         WHERE deadline_at IS NOT NULL AND status IN ('queued', 'waiting')
           AND task_id IN (SELECT value FROM json_each(@ids)) ORDER BY deadline_at LIMIT 1), ${none})
     ) AS runAt`,
  )
  return (taskIds: readonly string[]): number | null => {
    if (taskIds.length === 0) return null
    const ids = JSON.stringify(taskIds)
    const next = statement.get({ ids })?.runAt ?? none
    return next >= none ? null : next
  }
}
