/**
 * The read methods of the engine that pages and statistics need (`Engine.list`, `history`,
 * `steps`, `taskStats`, `throughput`, `changesSince`), as functions of the storage port so
 * engine.ts stays about writes. Each validates its arguments first and throws
 * `ValidationError` (naming the field) or `NotFoundError` before reading anything else.
 */
import { isChangeCursor } from './change-cursor'
import { NotFoundError, ValidationError } from './errors'
import { toHistoryEvent, type HistoryEvent } from './execution-view'
import { isExecutionId } from './ids'
import {
  emptyCounts,
  fillBuckets,
  numericCursor,
  pageLimit,
  timeArg,
  toExecutionStep,
  toExecutionSummary,
  type ExecutionChangeEvent,
  type ExecutionStep,
  type ExecutionSummary,
  type Page,
  type TaskStats,
  type ThroughputBucket,
} from './read-views'
import type { TaskRegistry } from './registry'
import type { ExecutionStatus } from './state-machine'
import type { Storage } from './storage'

export interface ListExecutionsQuery {
  taskId?: string
  /** Children of this execution. */
  parentId?: string
  /** This execution and everything below it. */
  rootId?: string
  status?: ExecutionStatus | readonly ExecutionStatus[]
  /** Created at or after this time. */
  createdAfter?: Date | number
  /** Created before this time. */
  createdBefore?: Date | number
  /** Executions enqueued with this idempotency key (with `taskId`: at most one). */
  idempotencyKey?: string
  /** The `nextCursor` of the previous page. */
  cursor?: string
  /** @default 50, at most 500 */
  limit?: number
}

export interface HistoryPageQuery {
  /** The `nextCursor` of the previous page (a history seq). */
  cursor?: string
  /** @default 100, at most 1000 */
  limit?: number
  /** Only status transitions. */
  statusOnly?: boolean
}

export interface StepsPageQuery {
  /** The `nextCursor` of the previous page (a position). */
  cursor?: string
  /** @default 100, at most 500 */
  limit?: number
}

export interface ThroughputQueryInput {
  taskId?: string
  from: Date | number
  to: Date | number
  /** @default 60, at most 500 */
  buckets?: number
}

export interface ChangesSinceQuery {
  /** Changes after this cursor (a change's `cursor`, or `Engine.changeCursor()`); `''`: from the first. */
  after: string
  /** @default 100, at most 1000 */
  limit?: number
  taskId?: string
  rootId?: string
}

interface Deps {
  storage: Storage
  registry: TaskRegistry
}

/** Newest first, summaries; see `Engine.list`. */
export async function listExecutions(
  { storage, registry }: Deps,
  query: ListExecutionsQuery,
): Promise<Page<ExecutionSummary>> {
  const limit = pageLimit(query.limit, 50, 500)
  if (query.cursor !== undefined && !isExecutionId(query.cursor)) {
    throw new ValidationError('cursor is not a cursor returned by list', [
      { path: ['cursor'], message: 'invalid cursor' },
    ])
  }
  const statuses =
    query.status === undefined ? undefined : typeof query.status === 'string' ? [query.status] : query.status
  const createdFrom =
    query.createdAfter === undefined ? undefined : timeArg(query.createdAfter, 'createdAfter')
  const createdTo =
    query.createdBefore === undefined ? undefined : timeArg(query.createdBefore, 'createdBefore')
  const rows = await storage.list({
    ...(createdFrom !== undefined ? { createdFrom } : {}),
    ...(createdTo !== undefined ? { createdTo } : {}),
    ...(query.idempotencyKey !== undefined ? { idempotencyKey: query.idempotencyKey } : {}),
    ...(query.taskId !== undefined ? { taskId: registry.resolve(query.taskId)?.id ?? query.taskId } : {}),
    ...(query.parentId !== undefined ? { parentId: query.parentId } : {}),
    ...(query.rootId !== undefined ? { rootId: query.rootId } : {}),
    ...(statuses ? { statuses } : {}),
    ...(query.cursor !== undefined ? { beforeId: query.cursor } : {}),
    limit: limit + 1,
  })
  const page = rows.slice(0, limit)
  return {
    items: page.map(toExecutionSummary),
    nextCursor: rows.length > limit ? page[page.length - 1]!.id : null,
  }
}

/** Throws `NotFoundError` unless the execution exists. */
async function mustExist(storage: Storage, id: string): Promise<void> {
  if (!isExecutionId(id) || !(await storage.get(id)))
    throw new NotFoundError(`no execution with id "${id}"`, { executionId: id })
}

/** A page of the execution's history, oldest first; see `Engine.history`. */
export async function historyPage(
  { storage }: Deps,
  id: string,
  query: HistoryPageQuery,
): Promise<Page<HistoryEvent>> {
  const limit = pageLimit(query.limit, 100, 1000)
  const afterSeq = numericCursor(query.cursor, 'history')
  await mustExist(storage, id)
  const rows = await storage.history(id, {
    ...(afterSeq !== undefined ? { afterSeq } : {}),
    ...(query.statusOnly ? { statusOnly: true } : {}),
    limit: limit + 1,
  })
  const page = rows.slice(0, limit)
  return {
    items: page.map(toHistoryEvent),
    nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null,
  }
}

/** A page of the execution's durable record, by position; see `Engine.steps`. */
export async function stepsPage(
  { storage }: Deps,
  id: string,
  query: StepsPageQuery,
): Promise<Page<ExecutionStep>> {
  const limit = pageLimit(query.limit, 100, 500)
  const afterPosition = numericCursor(query.cursor, 'steps')
  await mustExist(storage, id)
  const rows = await storage.steps(id, {
    ...(afterPosition !== undefined ? { afterPosition } : {}),
    limit: limit + 1,
  })
  const page = rows.slice(0, limit)
  return {
    items: page.map(toExecutionStep),
    nextCursor: rows.length > limit ? String(page[page.length - 1]!.position) : null,
  }
}

/** Per task, registered or with executions, sorted by id; see `Engine.taskStats`. */
export async function taskStats({ storage, registry }: Deps, now: number): Promise<TaskStats[]> {
  const byTask = new Map<string, TaskStats>()
  const [rows, queues] = await Promise.all([storage.taskStats(now), storage.taskQueues()])
  const pausedAt = new Map(queues.map((q) => [q.taskId, q.pausedAt]))
  for (const task of registry.list())
    byTask.set(task.id, {
      taskId: task.id,
      counts: emptyCounts(),
      queueDepth: 0,
      oldestQueuedAt: null,
      pausedAt: pausedAt.get(task.id) ?? null,
    })
  for (const row of rows)
    byTask.set(row.taskId, { ...row, counts: { ...row.counts }, pausedAt: pausedAt.get(row.taskId) ?? null })
  return [...byTask.values()].sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))
}

/** Ended and started executions per bucket; see `Engine.throughput`. */
export async function throughput(
  { storage, registry }: Deps,
  query: ThroughputQueryInput,
): Promise<{ bucketMs: number; items: ThroughputBucket[] }> {
  const from = timeArg(query.from, 'from')
  const to = timeArg(query.to, 'to')
  if (to <= from)
    throw new ValidationError('to must be after from', [
      { path: ['to'], message: 'expected a time after from' },
    ])
  const buckets = query.buckets ?? 60
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 500)
    throw new ValidationError(`buckets must be an integer from 1 to 500, got ${String(buckets)}`, [
      { path: ['buckets'], message: 'expected an integer from 1 to 500' },
    ])
  // Exactly `buckets` buckets of whole ms: the last one may reach past `to`, and counts nothing there.
  const bucketMs = Math.max(1, Math.ceil((to - from) / buckets))
  const rows = await storage.throughput({
    ...(query.taskId !== undefined ? { taskId: registry.resolve(query.taskId)?.id ?? query.taskId } : {}),
    from,
    to,
    bucketMs,
  })
  return { bucketMs, items: fillBuckets(rows, from, bucketMs, buckets) }
}

/** Status changes after a cursor; see `Engine.changesSince`. */
export async function changesSince(
  { storage, registry }: Deps,
  query: ChangesSinceQuery,
): Promise<ExecutionChangeEvent[]> {
  if (typeof query.after !== 'string' || !isChangeCursor(query.after))
    throw new ValidationError('after is not a change cursor', [
      { path: ['after'], message: "expected '' or a cursor of a change (digits, or digits.digits)" },
    ])
  const limit = pageLimit(query.limit, 100, 1000)
  return storage.changesSince({
    after: query.after,
    limit,
    ...(query.taskId !== undefined ? { taskId: registry.resolve(query.taskId)?.id ?? query.taskId } : {}),
    ...(query.rootId !== undefined ? { rootId: query.rootId } : {}),
  })
}
