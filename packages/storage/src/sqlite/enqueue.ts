import { and, eq, sql } from 'drizzle-orm'
import { ConflictError, type EnqueueOutcome, type ExecutionRow, type NewExecution } from '@ratchet/core'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/**
 * `enqueue`: inserts queued executions; an existing (task_id, idempotency_key) is returned
 * instead (ON CONFLICT DO NOTHING, then a read), and gets no history row. An existing row
 * with a different input throws `ConflictError`, which rolls back the whole call.
 */
/** The insert's parameters for one new execution. */
export function insertParams(row: NewExecution, now: number) {
  return {
    ...row,
    backoff: JSON.stringify(row.backoff),
    parentId: row.parentId ?? null,
    rootId: row.rootId ?? null,
    wakesParent: row.wakesParent ? 1 : 0,
    deadlineAt: row.deadlineAt ?? null,
    now,
  }
}

/**
 * Inserts one queued execution, top-level or child; `undefined` when its (task_id,
 * idempotency_key) already exists (ON CONFLICT DO NOTHING). The one home of this INSERT.
 */
export function prepareInsertExecution(db: SqliteDb) {
  const insert = db
    .insert(executions)
    .values({
      id: sql.placeholder('id'),
      taskId: sql.placeholder('taskId'),
      status: 'queued',
      input: sql.placeholder('input'),
      maxAttempts: sql.placeholder('maxAttempts'),
      timeoutMs: sql.placeholder('timeoutMs'),
      backoff: sql.placeholder('backoff'),
      priority: sql.placeholder('priority'),
      idempotencyKey: sql.placeholder('idempotencyKey'),
      runAt: sql.placeholder('runAt'),
      parentId: sql.placeholder('parentId'),
      rootId: sql.placeholder('rootId'),
      wakesParent: sql.placeholder('wakesParent'),
      deadlineAt: sql.placeholder('deadlineAt'),
      createdAt: sql.placeholder('now'),
      updatedAt: sql.placeholder('now'),
    })
    .onConflictDoNothing()
    .returning()
    .prepare()
  return (row: NewExecution, now: number) => (insert.all(insertParams(row, now)) as ExecutionRow[])[0]
}

export function prepareEnqueue(db: SqliteDb, appendHistory: AppendHistory) {
  const insert = prepareInsertExecution(db)
  const byKey = db
    .select()
    .from(executions)
    .where(
      and(
        eq(executions.taskId, sql.placeholder('taskId')),
        eq(executions.idempotencyKey, sql.placeholder('key')),
      ),
    )
    .prepare()
  const run = db.$client.transaction((rows: readonly NewExecution[], now: number): EnqueueOutcome[] =>
    rows.map((row) => {
      const inserted = insert(row, now)
      if (inserted) {
        appendHistory({
          executionId: inserted.id,
          at: now,
          fromStatus: null,
          toStatus: 'queued',
          attempt: 0,
          detail: null,
        })
        return { row: inserted, created: true }
      }
      const existing = byKey.get({ taskId: row.taskId, key: row.idempotencyKey })
      if (!existing)
        throw new Error(`enqueue of ${row.id} conflicted, but no execution holds its idempotency key`)
      if (existing.input !== row.input) {
        throw new ConflictError(
          `idempotency key "${row.idempotencyKey}" of task "${row.taskId}" was already used with a different input (execution ${existing.id})`,
        )
      }
      return { row: existing, created: false }
    }),
  )
  return (rows: readonly NewExecution[], now: number) => run(rows, now)
}
