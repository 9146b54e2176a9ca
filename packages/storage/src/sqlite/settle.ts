import { and, eq, sql } from 'drizzle-orm'
import type { Settlement } from '@ratchet/core'
import { param, type SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'

/**
 * `settle`: writes finished attempts, each fenced by (id, attempt, status = running). A
 * settlement whose fence fails (a stale attempt) changes nothing and reports `false`.
 */
export function prepareSettle(db: SqliteDb, appendHistory: AppendHistory) {
  const fence = and(
    eq(executions.id, sql.placeholder('id')),
    eq(executions.attempt, sql.placeholder('attempt')),
    sql`${executions.status} = 'running'`,
  )
  const released = { leaseOwner: null, leaseExpiresAt: null, updatedAt: param('now') } as const
  const complete = db
    .update(executions)
    .set({ status: 'completed', output: param('output'), error: null, finishedAt: param('now'), ...released })
    .where(fence)
    .prepare()
  const requeue = db
    .update(executions)
    .set({ status: 'queued', error: param('error'), runAt: param('runAt'), ...released })
    .where(fence)
    .prepare()
  const finish = (status: 'failed' | 'timed_out') =>
    db
      .update(executions)
      .set({ status, error: param('error'), finishedAt: param('now'), ...released })
      .where(fence)
      .prepare()
  const fail = finish('failed')
  const timeOut = finish('timed_out')

  const run = db.$client.transaction((settlements: readonly Settlement[], now: number): boolean[] =>
    settlements.map((s) => {
      const ref = { id: s.id, attempt: s.attempt, now }
      let changes: number
      let to: string
      let detail: string | null
      switch (s.transition) {
        case 'complete':
          changes = complete.run({ ...ref, output: s.output }).changes
          to = 'completed'
          detail = null
          break
        case 'retry':
        case 'release':
          changes = requeue.run({ ...ref, error: s.error, runAt: s.runAt }).changes
          to = 'queued'
          detail = `{"transition":"${s.transition}","runAt":${s.runAt},"error":${s.error}}`
          break
        case 'fail':
          changes = fail.run({ ...ref, error: s.error }).changes
          to = 'failed'
          detail = `{"error":${s.error}}`
          break
        case 'time_out':
          changes = timeOut.run({ ...ref, error: s.error }).changes
          to = 'timed_out'
          detail = `{"error":${s.error}}`
          break
      }
      if (changes === 0) return false
      appendHistory({
        executionId: s.id,
        at: now,
        fromStatus: 'running',
        toStatus: to,
        attempt: s.attempt,
        detail,
      })
      return true
    }),
  )
  return (settlements: readonly Settlement[], now: number) =>
    settlements.length === 0 ? [] : run(settlements, now)
}
