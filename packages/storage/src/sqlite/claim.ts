import { asc, desc, inArray, lte, sql, and } from 'drizzle-orm'
import type { ClaimRequest, ExecutionRow } from '@ratchet/core'
import { param, type SqliteDb } from './database'
import type { AppendHistory } from './history'
import { prepareExpireDeadlines, prepareWakeDueWaiters } from './timers'
import type { Wake } from './wake'
import { executions } from './schema'

/**
 * `claim`: first wakes waiters whose time came and times out executions past their
 * deadline, then queued → running for the best `limit` due executions, in one UPDATE … RETURNING.
 * The inner SELECT walks `executions_claim_idx` (status = 'queued' is a literal so the
 * partial index applies). SQLite has one writer, so no row can be claimed twice.
 */
export function prepareClaim(db: SqliteDb, appendHistory: AppendHistory, wake: Wake) {
  const wakeDue = prepareWakeDueWaiters(db, appendHistory)
  const expire = prepareExpireDeadlines(db, appendHistory, wake)
  // The task list is fixed per executor, so one prepared statement per distinct list.
  const byTaskList = new Map<string, ReturnType<typeof build>>()
  function build(taskIds: readonly string[]) {
    const due = db
      .select({ id: executions.id })
      .from(executions)
      .where(
        and(
          sql`${executions.status} = 'queued'`,
          lte(executions.runAt, sql.placeholder('now')),
          inArray(executions.taskId, [...taskIds]),
        ),
      )
      .orderBy(desc(executions.priority), asc(executions.runAt), asc(executions.id))
      .limit(sql.placeholder('limit'))
    return db
      .update(executions)
      .set({
        status: 'running',
        attempt: sql`${executions.attempt} + 1`,
        leaseOwner: param('owner'),
        leaseExpiresAt: param('leaseExpiresAt'),
        startedAt: sql`coalesce(${executions.startedAt}, ${param('now')})`,
        updatedAt: param('now'),
        wakePending: 0,
      })
      .where(inArray(executions.id, due))
      .returning()
      .prepare()
  }
  const run = db.$client.transaction((request: ClaimRequest): ExecutionRow[] => {
    wakeDue(request.now)
    expire(request.now)
    const key = request.taskIds.join('\u0000')
    let statement = byTaskList.get(key)
    if (!statement) byTaskList.set(key, (statement = build(request.taskIds)))
    const rows = statement.all({
      now: request.now,
      limit: request.limit,
      owner: request.owner,
      leaseExpiresAt: request.now + request.leaseMs,
    }) as ExecutionRow[]
    // RETURNING gives no order; start them in claim order.
    rows.sort(
      (a, b) => b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    )
    for (const row of rows) {
      appendHistory({
        executionId: row.id,
        at: request.now,
        fromStatus: 'queued',
        toStatus: 'running',
        attempt: row.attempt,
        detail: JSON.stringify({ worker: request.owner }),
      })
    }
    return rows
  })
  // limit 0: only the wake-ups and deadline expiries (the poll runs it when every slot is busy).
  const maintain = db.$client.transaction((now: number) => {
    wakeDue(now)
    expire(now)
  })
  return (request: ClaimRequest): ExecutionRow[] => {
    if (request.limit <= 0) {
      maintain(request.now)
      return []
    }
    return request.taskIds.length === 0 ? [] : run(request)
  }
}
