import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm'
import type { ExecutionRow, HistoryRow, ListQuery } from '@ratchet/core'
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

/** `list`: newest first (ids are time-ordered), filtered, keyset-paginated by id. */
export function list(db: SqliteDb, query: ListQuery): ExecutionRow[] {
  return db
    .select()
    .from(executions)
    .where(
      and(
        query.taskId !== undefined ? eq(executions.taskId, query.taskId) : undefined,
        query.statuses !== undefined ? inArray(executions.status, [...query.statuses]) : undefined,
        query.beforeId !== undefined ? lt(executions.id, query.beforeId) : undefined,
      ),
    )
    .orderBy(desc(executions.id))
    .limit(query.limit)
    .all()
}

/** `history`: the execution's transitions in order. */
export function prepareHistory(db: SqliteDb) {
  const statement = db
    .select()
    .from(executionHistory)
    .where(eq(executionHistory.executionId, sql.placeholder('id')))
    .orderBy(asc(executionHistory.seq))
    .prepare()
  return (id: string): HistoryRow[] =>
    statement.all({ id }).map((r) => ({
      seq: r.seq,
      executionId: r.executionId,
      at: r.at,
      from: r.fromStatus,
      to: r.toStatus,
      attempt: r.attempt,
      detail: r.detail,
    }))
}

/**
 * `nextRunAt`: the earliest queued run_at of these tasks. Raw SQL because it must walk the
 * partial `executions_due_idx` in order (INDEXED BY, which drizzle cannot express); without
 * it SQLite scans every queued row. The task list is bound as JSON, so one statement serves all.
 */
export function prepareNextRunAt(db: SqliteDb) {
  const statement = db.$client.prepare<[string], { runAt: number }>(
    `SELECT run_at AS runAt FROM executions INDEXED BY executions_due_idx
      WHERE status = 'queued' AND task_id IN (SELECT value FROM json_each(?))
      ORDER BY run_at LIMIT 1`,
  )
  return (taskIds: readonly string[]): number | null =>
    taskIds.length === 0 ? null : (statement.get(JSON.stringify(taskIds))?.runAt ?? null)
}
