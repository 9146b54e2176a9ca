import { and, asc, desc, eq, gt, gte, inArray, lt, or, sql } from 'drizzle-orm'
import type { ExecutionSummaryRow, ListQuery, StepRow, StepsQuery } from '@ratchet/core'
import type { SqliteDb } from './database'
import { executions, executionSteps } from './schema'

/**
 * The columns of a summary: never `input` or `output`, and the error reduced in SQL to its
 * name, message and code, so a list of executions with large payloads or long stacks reads
 * none of them into the process.
 */
const summaryColumns = {
  id: executions.id,
  taskId: executions.taskId,
  status: executions.status,
  error: sql<string | null>`CASE WHEN ${executions.error} IS NULL THEN NULL ELSE json_object(
    'name', json_extract(${executions.error}, '$.name'),
    'message', json_extract(${executions.error}, '$.message'),
    'code', json_extract(${executions.error}, '$.code')) END`,
  runs: executions.runs,
  failures: executions.failures,
  maxAttempts: executions.maxAttempts,
  recoveries: executions.recoveries,
  maxRecoveries: executions.maxRecoveries,
  timeoutMs: executions.timeoutMs,
  priority: executions.priority,
  idempotencyKey: executions.idempotencyKey,
  runAt: executions.runAt,
  createdAt: executions.createdAt,
  updatedAt: executions.updatedAt,
  startedAt: executions.startedAt,
  finishedAt: executions.finishedAt,
  parentId: executions.parentId,
  rootId: executions.rootId,
  deadlineAt: executions.deadlineAt,
}

/** `list`: summaries, newest first (ids are time-ordered), filtered, keyset-paginated by id. */
export function listSummaries(db: SqliteDb, query: ListQuery): ExecutionSummaryRow[] {
  return db
    .select(summaryColumns)
    .from(executions)
    .where(
      and(
        query.taskId !== undefined ? eq(executions.taskId, query.taskId) : undefined,
        query.parentId !== undefined ? eq(executions.parentId, query.parentId) : undefined,
        query.rootId !== undefined
          ? or(eq(executions.rootId, query.rootId), eq(executions.id, query.rootId))
          : undefined,
        query.statuses !== undefined ? inArray(executions.status, [...query.statuses]) : undefined,
        query.beforeId !== undefined ? lt(executions.id, query.beforeId) : undefined,
        query.createdFrom !== undefined ? gte(executions.createdAt, query.createdFrom) : undefined,
        query.createdTo !== undefined ? lt(executions.createdAt, query.createdTo) : undefined,
        query.idempotencyKey !== undefined ? eq(executions.idempotencyKey, query.idempotencyKey) : undefined,
      ),
    )
    .orderBy(desc(executions.id))
    .limit(query.limit)
    .all()
}

/** `steps`: one page of an execution's record, by position (its primary key). */
export function prepareSteps(db: SqliteDb) {
  const statement = db
    .select()
    .from(executionSteps)
    .where(
      and(
        eq(executionSteps.executionId, sql.placeholder('id')),
        gt(executionSteps.position, sql.placeholder('afterPosition')),
      ),
    )
    .orderBy(asc(executionSteps.position))
    .limit(sql.placeholder('limit'))
    .prepare()
  return (id: string, query: StepsQuery): StepRow[] =>
    statement.all({ id, afterPosition: query.afterPosition ?? -1, limit: query.limit })
}
