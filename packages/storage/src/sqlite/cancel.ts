import { and, eq, inArray, sql } from 'drizzle-orm'
import { CANCELLABLE_STATUSES, type CancelOutcome, type ExecutionRow } from '@ratchet/core'
import { param, type SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/** `cancel`: queued | running | waiting → cancelled, guarded on the status read in the same transaction. */
export function prepareCancel(db: SqliteDb, appendHistory: AppendHistory) {
  const read = db
    .select()
    .from(executions)
    .where(eq(executions.id, sql.placeholder('id')))
    .prepare()
  const cancel = db
    .update(executions)
    .set({
      status: 'cancelled',
      error: param('error'),
      leaseOwner: null,
      leaseExpiresAt: null,
      finishedAt: param('now'),
      updatedAt: param('now'),
    })
    .where(
      and(eq(executions.id, sql.placeholder('id')), inArray(executions.status, [...CANCELLABLE_STATUSES])),
    )
    .returning()
    .prepare()
  const run = db.$client.transaction((id: string, now: number, error: string): CancelOutcome | undefined => {
    const before = read.get({ id })
    if (!before) return undefined
    const [after] = cancel.all({ id, now, error }) as ExecutionRow[]
    if (!after) return { row: before, cancelledFrom: null }
    appendHistory({
      executionId: id,
      at: now,
      fromStatus: before.status,
      toStatus: 'cancelled',
      attempt: before.attempt,
      detail: null,
    })
    return { row: after, cancelledFrom: before.status }
  })
  return (id: string, now: number, error: string) => run(id, now, error)
}
