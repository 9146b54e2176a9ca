import { and, asc, eq, gt, or, sql } from 'drizzle-orm'
import type { HistoryQuery, HistoryRow } from '@ratchet/core'
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
