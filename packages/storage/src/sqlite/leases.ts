import { and, eq, sql } from 'drizzle-orm'
import type { RecoverRequest, RecoveredExecution, RunRef } from '@ratchet/core'
import { param, type SqliteDb } from './database'
import type { CancelTree } from './cancel'
import type { AppendHistory } from './history'
import type { Wake } from './wake'
import { executions } from './schema'

/** `extendLeases`: pushes out the leases this owner still holds; returns those it lost. */
export function prepareExtendLeases(db: SqliteDb) {
  const extend = db
    .update(executions)
    .set({ leaseExpiresAt: param('leaseExpiresAt') })
    .where(
      and(
        eq(executions.id, sql.placeholder('id')),
        eq(executions.runs, sql.placeholder('run')),
        eq(executions.leaseOwner, sql.placeholder('owner')),
        sql`${executions.status} = 'running'`,
      ),
    )
    .prepare()
  const run = db.$client.transaction((owner: string, leases: readonly RunRef[], leaseExpiresAt: number) =>
    leases.filter((ref) => extend.run({ ...ref, owner, leaseExpiresAt }).changes === 0),
  )
  return (owner: string, leases: readonly RunRef[], now: number, leaseMs: number) =>
    leases.length === 0 ? [] : run(owner, leases, now + leaseMs)
}

/**
 * `recoverLeases`: running executions whose lease expired (or, single-writer only, whose
 * owner is not the caller) lost their run to a crash. That is not a failed attempt: the
 * execution goes back to queued, due now, with `recoveries` + 1, or 1 when the lost run
 * recorded progress (a step record created or completed since its claim, `claimed_at`: read
 * here, so the step path writes nothing for it). Past `max_recoveries` it ends `failed`
 * instead (`abandon`, a failed attempt), wakes the parent awaiting it and, with
 * `cancelChildrenError`, cancels the children it awaited. Which runs count as lost is as
 * before (an expired lease; with `everyOwnerBut`, any other owner's), and each update is
 * fenced by (id, run, status = running) like a settlement.
 */
export function prepareRecoverLeases(
  db: SqliteDb,
  appendHistory: AppendHistory,
  wake: Wake,
  cancelTree: CancelTree,
) {
  const client = db.$client
  type Candidate = {
    id: string
    taskId: string
    run: number
    recoveries: number
    maxRecoveries: number
    parentId: string | null
    wakesParent: number
    progressed: number
  }
  // A run that was claimed before claimed_at existed counts any record as its progress.
  const select = (everyOwnerBut: boolean) =>
    client.prepare<[{ now: number; limit: number; owner: string }], Candidate>(
      `SELECT e.id, e.task_id AS taskId, e.attempt AS run, e.recoveries, e.max_recoveries AS maxRecoveries,
              e.parent_id AS parentId, e.wakes_parent AS wakesParent,
              EXISTS (SELECT 1 FROM execution_steps s
                       WHERE s.execution_id = e.id
                         AND (s.created_at >= coalesce(e.claimed_at, 0)
                              OR s.completed_at >= coalesce(e.claimed_at, 0))) AS progressed
         FROM executions e
        WHERE e.status = 'running'
          AND (e.lease_expires_at < @now${everyOwnerBut ? ' OR e.lease_owner != @owner' : ''})
        LIMIT @limit`,
    )
  const selectExpired = select(false)
  const selectForeign = select(true)
  const fence = `id = @id AND attempt = @run AND status = 'running'`
  const requeue = client.prepare<[{ id: string; run: number; now: number; recoveries: number }]>(
    `UPDATE executions
        SET status = 'queued', run_at = @now, recoveries = @recoveries,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE ${fence}`,
  )
  const abandon = client.prepare<[{ id: string; run: number; now: number; error: string }]>(
    `UPDATE executions
        SET status = 'failed', error = @error, failures = failures + 1, finished_at = @now,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE ${fence}`,
  )

  const run = client.transaction((request: RecoverRequest): RecoveredExecution[] => {
    const params = { now: request.now, limit: request.limit, owner: request.everyOwnerBut ?? '' }
    const candidates = (request.everyOwnerBut === undefined ? selectExpired : selectForeign).all(params)
    const recovered: RecoveredExecution[] = []
    for (const c of candidates) {
      const progressed = c.progressed === 1
      const recoveries = progressed ? 1 : c.recoveries + 1
      const ref = { id: c.id, run: c.run, now: request.now }
      let detail: string
      let status: 'queued' | 'failed'
      if (recoveries <= c.maxRecoveries) {
        if (requeue.run({ ...ref, recoveries }).changes === 0) continue
        status = 'queued'
        detail = `{"transition":"recover","error":${request.error},"recoveries":${recoveries},"progressed":${progressed}}`
      } else {
        const error = request.exhaustedError(c.maxRecoveries)
        if (abandon.run({ ...ref, error }).changes === 0) continue
        status = 'failed'
        detail = `{"transition":"abandon","error":${error},"lost":${request.error},"recoveries":${c.recoveries},"progressed":${progressed}}`
      }
      appendHistory({
        executionId: c.id,
        at: request.now,
        fromStatus: 'running',
        toStatus: status,
        run: c.run,
        detail,
      })
      const cancelledChildren =
        status === 'failed' && request.cancelChildrenError !== undefined
          ? cancelTree.awaitedChildren(c.id, request.now, request.cancelChildrenError)
          : []
      recovered.push({
        id: c.id,
        taskId: c.taskId,
        run: c.run,
        status,
        progressed,
        recoveries: status === 'queued' ? recoveries : c.recoveries,
        maxRecoveries: c.maxRecoveries,
        cancelledChildren,
      })
      if (status === 'failed' && c.parentId !== null && c.wakesParent === 1)
        wake(c.parentId, request.now, `child ${c.id} failed`)
    }
    return recovered
  })
  return (request: RecoverRequest) => run(request)
}
