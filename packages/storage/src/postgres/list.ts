import { and, desc, eq, gte, inArray, lt, or, sql } from 'drizzle-orm'
import type { ExecutionSummaryRow, ListQuery } from '@ratchet/core'
import type { PostgresDatabase } from './database'
import { isStoredId } from './ids'
import { executions } from './schema'

/**
 * The stored error reduced to `{"name":…,"message":…,"code":…}`, in SQL: the same text as
 * `JSON.stringify({ name, message, code })` of the parsed error (each field's JSON as stored,
 * `null` when absent), so a page of executions with long stacks reads none of them into the
 * process. `json`, not `jsonb`: it keeps each value's text as written. PostgreSQL's JSON cannot
 * hold `\u0000` or an unpaired surrogate escape (JSON.stringify writes both, e.g. from an error
 * message with a NUL byte); those escapes are read as U+FFFD here, rather than failing the
 * whole page.
 */
const UNSUPPORTED_ESCAPE = String.raw`'\\u(0000|[dD][89a-fA-F])'`
const UNSUPPORTED_ESCAPES = String.raw`'(?<!\\)((?:\\\\)*)\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})'`
const REPLACEMENT_CHARACTER = String.raw`'\1\\ufffd'`
const readableError = sql`CASE WHEN ${executions.error} ~ ${sql.raw(UNSUPPORTED_ESCAPE)}
  THEN regexp_replace(${executions.error}, ${sql.raw(UNSUPPORTED_ESCAPES)}, ${sql.raw(REPLACEMENT_CHARACTER)}, 'g')
  ELSE ${executions.error} END`
const reducedError = sql<string | null>`CASE WHEN ${executions.error} IS NULL THEN NULL ELSE (
  SELECT '{"name":' || coalesce((j -> 'name')::text, 'null') || ',"message":' || coalesce((j -> 'message')::text, 'null')
         || ',"code":' || coalesce((j -> 'code')::text, 'null') || '}'
  FROM (SELECT (${readableError})::json AS j) reduced) END`

/** The columns of a summary: never `input` or `output`; the error reduced in SQL. */
const summaryColumns = {
  id: executions.id,
  taskId: executions.taskId,
  status: executions.status,
  error: reducedError,
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

/**
 * `list`: summaries, newest first (ids are time-ordered), filtered, keyset-paginated by id;
 * `rootId` matches the root and every execution below it. One autocommitted statement, built
 * per call from the filters present (each combination gets its own plan: a task filter walks
 * executions_task_idx, a tree executions_root_idx and the primary key). Failure semantics: an
 * unreachable database throws `StorageUnavailableError`; nothing is written.
 */
export async function listSummaries(
  database: PostgresDatabase,
  query: ListQuery,
): Promise<ExecutionSummaryRow[]> {
  // An id that is not a UUID names no execution (SQLite compares it as text and finds none).
  if (query.parentId !== undefined && !isStoredId(query.parentId)) return []
  if (query.rootId !== undefined && !isStoredId(query.rootId)) return []
  const { beforeId } = query
  const before =
    beforeId === undefined
      ? undefined
      : isStoredId(beforeId)
        ? lt(executions.id, beforeId)
        : // Text order, as SQLite compares it (canonical UUIDs sort the same as text and as uuid).
          sql`${executions.id}::text < ${beforeId}`
  const rows = await database.run(() =>
    database.db
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
          before,
          query.createdFrom !== undefined ? gte(executions.createdAt, query.createdFrom) : undefined,
          query.createdTo !== undefined ? lt(executions.createdAt, query.createdTo) : undefined,
          query.idempotencyKey !== undefined
            ? eq(executions.idempotencyKey, query.idempotencyKey)
            : undefined,
        ),
      )
      .orderBy(desc(executions.id))
      .limit(query.limit),
  )
  return rows
}
