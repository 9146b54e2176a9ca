import { and, eq, sql } from 'drizzle-orm'
import {
  ConflictError,
  sameJson,
  type EnqueueOutcome,
  type ExecutionRow,
  type NewExecution,
} from '@ratchet/core'
import { executionColumns, executionRowOf } from '../execution-columns'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/**
 * `enqueue`: inserts queued executions; an existing (task_id, idempotency_key) is returned
 * instead (ON CONFLICT DO NOTHING, then a read), and gets no history row. An existing row
 * with a different input (compared as canonical JSON: key order does not count) throws
 * `ConflictError`, which rolls back the whole call.
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
 * Inserts one queued execution, top-level or child; `false` when its (task_id,
 * idempotency_key) already exists (ON CONFLICT DO NOTHING). The one home of this INSERT. Raw
 * SQL on the driver: it is the hottest write (every enqueue and every child), and drizzle's
 * per-call placeholder filling and RETURNING mapping cost more than the insert itself.
 */
export function prepareInsertExecution(db: SqliteDb) {
  const insert = db.$client.prepare<[ReturnType<typeof insertParams>]>(
    `INSERT INTO executions (id, task_id, status, input, max_attempts, max_recoveries, timeout_ms, backoff,
                             priority, idempotency_key, run_at, parent_id, root_id, wakes_parent, deadline_at,
                             created_at, updated_at)
     VALUES (@id, @taskId, 'queued', @input, @maxAttempts, @maxRecoveries, @timeoutMs, @backoff,
             @priority, @idempotencyKey, @runAt, @parentId, @rootId, @wakesParent, @deadlineAt, @now, @now)
     ON CONFLICT DO NOTHING`,
  )
  return (row: NewExecution, now: number): boolean => insert.run(insertParams(row, now)).changes === 1
}

/**
 * The row `prepareInsertExecution` just wrote, built from what it bound rather than read back:
 * every other column takes its default (the conformance suite compares it with a read).
 */
function insertedRow(row: NewExecution, now: number): ExecutionRow {
  return {
    id: row.id,
    taskId: row.taskId,
    status: 'queued',
    input: row.input,
    output: null,
    error: null,
    runs: 0,
    failures: 0,
    maxAttempts: row.maxAttempts,
    recoveries: 0,
    maxRecoveries: row.maxRecoveries,
    claimedAt: null,
    timeoutMs: row.timeoutMs,
    backoff: JSON.stringify(row.backoff),
    priority: row.priority,
    idempotencyKey: row.idempotencyKey,
    runAt: row.runAt,
    leaseOwner: null,
    leaseExpiresAt: null,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
    parentId: row.parentId ?? null,
    rootId: row.rootId ?? null,
    wakesParent: row.wakesParent ? 1 : 0,
    deadlineAt: row.deadlineAt ?? null,
    wakePending: 0,
    generation: 0,
    debounceKey: null,
  }
}

/**
 * A debounced enqueue (`NewExecution.debounce`): inserts the row with its key, or, when an
 * execution of the task with that key is queued and has never run (`executions_debounce_uq`),
 * gives that one this input and run_at instead (run_at bounded by its created_at + maxWaitMs).
 * Returns the row either way; it is the new one when its id is the row's.
 */
export function prepareDebouncedEnqueue(db: SqliteDb) {
  const upsert = db.$client
    .prepare<
      [ReturnType<typeof insertParams> & { debounceKey: string; maxWaitMs: number | null }],
      unknown[]
    >(
      `INSERT INTO executions (id, task_id, status, input, max_attempts, max_recoveries, timeout_ms, backoff,
                               priority, run_at, deadline_at, debounce_key, created_at, updated_at)
       VALUES (@id, @taskId, 'queued', @input, @maxAttempts, @maxRecoveries, @timeoutMs, @backoff,
               @priority, @runAt, @deadlineAt, @debounceKey, @now, @now)
       ON CONFLICT (task_id, debounce_key) WHERE debounce_key IS NOT NULL AND status = 'queued' AND attempt = 0
       DO UPDATE SET input = excluded.input, updated_at = excluded.updated_at,
         run_at = CASE WHEN @maxWaitMs IS NULL THEN excluded.run_at
                       ELSE min(excluded.run_at, executions.created_at + @maxWaitMs) END
       RETURNING ${executionColumns()}`,
    )
    .raw(true)
  return (row: NewExecution, now: number): ExecutionRow =>
    executionRowOf(
      upsert.get({
        ...insertParams(row, now),
        debounceKey: row.debounce!.key,
        maxWaitMs: row.debounce!.maxWaitMs,
      })!,
    )
}

export function prepareEnqueue(db: SqliteDb, appendHistory: AppendHistory) {
  const insert = prepareInsertExecution(db)
  const debounced = prepareDebouncedEnqueue(db)
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
  /** A new execution, with its first history row. */
  const created = (row: ExecutionRow): EnqueueOutcome => {
    appendHistory({
      executionId: row.id,
      at: row.createdAt,
      fromStatus: null,
      toStatus: 'queued',
      run: 0,
      detail: null,
    })
    return { row, created: true }
  }
  const run = db.$client.transaction((rows: readonly NewExecution[], now: number): EnqueueOutcome[] =>
    rows.map((row) => {
      if (row.debounce) {
        const stored = debounced(row, now)
        if (stored.id !== row.id) return { row: stored, created: false }
        return created(stored)
      }
      if (insert(row, now)) return created(insertedRow(row, now))
      const existing = byKey.get({ taskId: row.taskId, key: row.idempotencyKey })
      if (!existing)
        throw new Error(`enqueue of ${row.id} conflicted, but no execution holds its idempotency key`)
      // The same input with its keys in another order is the same input (compared canonically
      // only here, on a reused key: the insert path stores the text as it came).
      if (!sameJson(existing.input, row.input)) {
        throw new ConflictError(
          `idempotency key "${row.idempotencyKey}" of task "${row.taskId}" was already used with a different input (execution ${existing.id})`,
          { executionId: existing.id },
        )
      }
      return { row: existing, created: false }
    }),
  )
  return (rows: readonly NewExecution[], now: number) => run(rows, now)
}
