import { eq, sql } from 'drizzle-orm'
import type { SqliteDb } from './database'
import { param } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/**
 * Wakes an execution because something it may wait for happened (a signal, a child's end,
 * a cancel below it): `waiting` → `queued` now; a `running` one is marked `wake_pending`, so
 * its next park requeues it instead (no wake-up is lost while it runs). Runs inside the
 * caller's transaction. Returns whether a waiting execution was queued.
 */
export function prepareWake(db: SqliteDb, appendHistory: AppendHistory) {
  const read = db
    .select({ status: executions.status, runs: executions.runs })
    .from(executions)
    .where(eq(executions.id, sql.placeholder('id')))
    .prepare()
  const requeue = db
    .update(executions)
    .set({ status: 'queued', runAt: param('now'), updatedAt: param('now'), wakePending: 0 })
    .where(sql`${executions.id} = ${sql.placeholder('id')} AND ${executions.status} = 'waiting'`)
    .prepare()
  const markPending = db
    .update(executions)
    .set({ wakePending: 1 })
    .where(sql`${executions.id} = ${sql.placeholder('id')} AND ${executions.status} = 'running'`)
    .prepare()
  return (id: string, now: number, reason: string): boolean => {
    const row = read.get({ id })
    if (row?.status === 'running') {
      markPending.run({ id })
      return false
    }
    if (row?.status !== 'waiting' || requeue.run({ id, now }).changes === 0) return false
    appendHistory({
      executionId: id,
      at: now,
      fromStatus: 'waiting',
      toStatus: 'queued',
      run: row.runs,
      detail: JSON.stringify({ transition: 'wake', reason }),
    })
    return true
  }
}

export type Wake = ReturnType<typeof prepareWake>
