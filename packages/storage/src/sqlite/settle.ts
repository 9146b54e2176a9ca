import { and, eq, sql } from 'drizzle-orm'
import type { CancelledExecution, Settlement, SettleOutcome } from '@ratchet/core'
import type { CancelTree } from './cancel'
import { param, type SqliteDb } from './database'
import type { AppendHistory } from './history'
import type { Wake } from './wake'
import { executions } from './schema'

/**
 * `settle`: writes finished runs, each fenced by (id, run, status = running). A settlement
 * whose fence fails (a stale run) changes nothing and reports `false`. One that ends its
 * execution records its outcome in its parent's record (`parentRecord`), wakes the parent
 * awaiting it and, with `cancelChildren`, cancels the children it still awaited. A run that
 * ends by itself (all but a release) resets `recoveries` to 0. A `continue` starts the next
 * generation: the old record, consumed signals and history are deleted in the same transaction
 * (the history once the `continue` row is written, so that its seq is above every one before).
 * A retry is due `delayMs` after `now`, a release at `now`: never before its own history row.
 */
export function prepareSettle(
  db: SqliteDb,
  appendHistory: AppendHistory,
  wake: Wake,
  cancelTree: CancelTree,
) {
  const fence = and(
    eq(executions.id, sql.placeholder('id')),
    eq(executions.runs, sql.placeholder('run')),
    sql`${executions.status} = 'running'`,
  )
  const released = { leaseOwner: null, leaseExpiresAt: null, updatedAt: param('now') } as const
  // The run ended by itself: the execution is not in a crash loop.
  const ended = { ...released, recoveries: 0 } as const
  const failed = sql`${executions.failures} + 1`
  // Raw SQL on the driver, for the hottest of them (every execution that succeeds ends here):
  // drizzle fills its placeholders by name on every call. The same columns as `ended` above.
  const complete = db.$client.prepare<
    [output: string, finishedAt: number, updatedAt: number, id: string, run: number]
  >(
    `UPDATE executions
        SET status = 'completed', output = ?, error = NULL, finished_at = ?, lease_owner = NULL,
            lease_expires_at = NULL, updated_at = ?, recoveries = 0
      WHERE id = ? AND attempt = ? AND status = 'running'`,
  )
  const requeue = (countsAsFailure: boolean) =>
    db
      .update(executions)
      .set({
        status: 'queued',
        error: param('error'),
        runAt: param('runAt'),
        ...(countsAsFailure ? { failures: failed, ...ended } : released),
      })
      .where(fence)
      .prepare()
  const retry = requeue(true)
  const release = requeue(false)
  // A park that raced with a wake-up (wake_pending) requeues at once instead of waiting.
  const park = db
    .update(executions)
    .set({
      status: sql`CASE WHEN ${executions.wakePending} = 1 THEN 'queued' ELSE 'waiting' END`,
      runAt: sql`CASE WHEN ${executions.wakePending} = 1 THEN ${param('now')} ELSE ${param('runAt')} END`,
      wakePending: 0,
      ...ended,
    })
    .where(fence)
    .returning({ status: executions.status })
    .prepare()
  const finish = (status: 'failed' | 'timed_out') =>
    db
      .update(executions)
      .set({ status, error: param('error'), failures: failed, finishedAt: param('now'), ...ended })
      .where(fence)
      .prepare()
  const continueAsNew = db
    .update(executions)
    .set({
      status: 'queued',
      input: param('input'),
      error: null,
      runAt: param('now'),
      failures: 0,
      generation: sql`${executions.generation} + 1`,
      wakePending: 0,
      ...ended,
    })
    .where(fence)
    .returning({ generation: executions.generation })
    .prepare()
  // The previous generation's record, consumed signals and history (continueAsNew).
  const forgetSteps = db.$client.prepare(`DELETE FROM execution_steps WHERE execution_id = ?`)
  const forgetSignals = db.$client.prepare(
    `DELETE FROM execution_signals WHERE execution_id = ? AND consumed_by IS NOT NULL`,
  )
  // The history before the `continue` row, deleted after it is written: deleted first, the
  // newest history row (usually this execution's own claim) would be gone, and the `continue`
  // row, a rowid, would reuse a seq that change streams have already passed.
  const forgetHistory = db.$client.prepare(`DELETE FROM execution_history WHERE execution_id = ? AND seq < ?`)
  const fail = finish('failed')
  const timeOut = finish('timed_out')
  // The parent's record of this child, if it still waits on it: by primary key, no history row
  // (the child's own history has its end).
  const recordInParent = db.$client.prepare<
    [
      {
        parentId: string
        position: number
        childId: string
        status: string
        value: string | null
        error: string | null
        now: number
      },
    ]
  >(
    `UPDATE execution_steps SET status = @status, value = @value, error = @error, completed_at = @now
      WHERE execution_id = @parentId AND position = @position AND child_id = @childId
        AND kind = 'child' AND status = 'waiting'`,
  )

  const run = db.$client.transaction((settlements: readonly Settlement[], now: number): SettleOutcome => {
    const cancelled: CancelledExecution[] = []
    const applied = settlements.map((s) => {
      if (s.transition === 'park' && !Number.isFinite(s.runAt)) {
        throw new TypeError(`settlement of ${s.id}: runAt must be a finite time, got ${String(s.runAt)}`)
      }
      if (s.transition === 'retry' && !(Number.isFinite(s.delayMs) && s.delayMs >= 0)) {
        throw new TypeError(`settlement of ${s.id}: delayMs must be a number >= 0, got ${String(s.delayMs)}`)
      }
      const ref = { id: s.id, run: s.run, now }
      let changes: number
      let to: string
      let detail: string | null = null
      switch (s.transition) {
        case 'complete':
          changes = complete.run(s.output, now, now, s.id, s.run).changes
          to = 'completed'
          break
        case 'retry':
        case 'release': {
          // Due after the back-off from now, the time of this write (and of its history row).
          const runAt = s.transition === 'retry' ? now + s.delayMs : now
          changes = (s.transition === 'retry' ? retry : release).run({
            ...ref,
            error: s.error,
            runAt,
          }).changes
          to = 'queued'
          detail = `{"transition":"${s.transition}","runAt":${runAt},"error":${s.error}}`
          break
        }
        case 'park': {
          const [parked] = park.all({ ...ref, runAt: s.runAt })
          if (!parked) return false
          changes = 1
          to = parked.status
          detail =
            to === 'waiting'
              ? `{"transition":"park","wakeAt":${s.runAt}}`
              : '{"transition":"park","woken":true}'
          break
        }
        case 'continue': {
          const [continued] = continueAsNew.all({ ...ref, input: s.input })
          if (!continued) return false
          forgetSteps.run(s.id)
          forgetSignals.run(s.id)
          changes = 1
          to = 'queued'
          detail = `{"transition":"continue","generation":${continued.generation}}`
          break
        }
        case 'fail':
        case 'time_out':
          changes = (s.transition === 'fail' ? fail : timeOut).run({ ...ref, error: s.error }).changes
          to = s.transition === 'fail' ? 'failed' : 'timed_out'
          // The record whose failure ended the run: what a rerun forgets (see rerun.ts).
          detail = s.failedStep
            ? `{"error":${s.error},"failedStep":${JSON.stringify(s.failedStep)}}`
            : `{"error":${s.error}}`
          break
      }
      if (changes === 0) return false
      const appended = appendHistory({
        executionId: s.id,
        at: now,
        fromStatus: 'running',
        toStatus: to,
        run: s.run,
        detail,
      })
      if (s.transition === 'continue') forgetHistory.run(s.id, appended.lastInsertRowid)
      const ended = to !== 'queued' && to !== 'waiting'
      if (ended && s.parentRecord) {
        const { parentId, position, outcome } = s.parentRecord
        recordInParent.run({
          parentId,
          position,
          childId: s.id,
          status: outcome.status,
          value: outcome.status === 'done' ? outcome.value : null,
          error: outcome.status === 'failed' ? outcome.error : null,
          now,
        })
      }
      if (ended && s.wakeParentId) wake(s.wakeParentId, now, `child ${s.id} ${to}`)
      if ((ended || s.transition === 'continue') && s.cancelChildren)
        cancelled.push(...cancelTree.awaitedChildren(s.id, now, s.cancelChildren.error))
      return true
    })
    return { applied, cancelled }
  })
  return (settlements: readonly Settlement[], now: number): SettleOutcome =>
    settlements.length === 0 ? { applied: [], cancelled: [] } : run(settlements, now)
}
