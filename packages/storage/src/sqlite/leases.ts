import { and, eq, lt, ne, or, sql } from 'drizzle-orm'
import type { AttemptRef, RecoverRequest, RecoveredExecution } from '@ratchet/core'
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
        eq(executions.attempt, sql.placeholder('attempt')),
        eq(executions.leaseOwner, sql.placeholder('owner')),
        sql`${executions.status} = 'running'`,
      ),
    )
    .prepare()
  const run = db.$client.transaction((owner: string, leases: readonly AttemptRef[], leaseExpiresAt: number) =>
    leases.filter((ref) => extend.run({ ...ref, owner, leaseExpiresAt }).changes === 0),
  )
  return (owner: string, leases: readonly AttemptRef[], now: number, leaseMs: number) =>
    leases.length === 0 ? [] : run(owner, leases, now + leaseMs)
}

/**
 * `recoverLeases`: running executions whose lease expired (or, single-writer only, whose
 * owner is not the caller) go back to queued at once when attempts remain, else to failed.
 * The lost attempt counts as a failure: that is what stops a task that crashes its worker
 * from looping. A parent waiting on an execution that fails this way is woken, and with
 * `cancelChildrenError` the children it awaited are cancelled.
 */
export function prepareRecoverLeases(
  db: SqliteDb,
  appendHistory: AppendHistory,
  wake: Wake,
  cancelTree: CancelTree,
) {
  const expiredWhere = (everyOwnerBut: boolean) =>
    and(
      sql`${executions.status} = 'running'`,
      everyOwnerBut
        ? or(
            lt(executions.leaseExpiresAt, sql.placeholder('now')),
            ne(executions.leaseOwner, sql.placeholder('owner')),
          )
        : lt(executions.leaseExpiresAt, sql.placeholder('now')),
    )
  const select = (everyOwnerBut: boolean) =>
    db
      .select({
        id: executions.id,
        taskId: executions.taskId,
        attempt: executions.attempt,
        failures: executions.failures,
        maxAttempts: executions.maxAttempts,
        parentId: executions.parentId,
        wakesParent: executions.wakesParent,
      })
      .from(executions)
      .where(expiredWhere(everyOwnerBut))
      .limit(sql.placeholder('limit'))
      .prepare()
  const selectExpired = select(false)
  const selectForeign = select(true)
  const fence = and(
    eq(executions.id, sql.placeholder('id')),
    eq(executions.attempt, sql.placeholder('attempt')),
    sql`${executions.status} = 'running'`,
  )
  const released = {
    leaseOwner: null,
    leaseExpiresAt: null,
    error: param('error'),
    failures: sql`${executions.failures} + 1`,
    updatedAt: param('now'),
  } as const
  const requeue = db
    .update(executions)
    .set({ status: 'queued', runAt: param('now'), ...released })
    .where(fence)
    .prepare()
  const abandon = db
    .update(executions)
    .set({ status: 'failed', finishedAt: param('now'), ...released })
    .where(fence)
    .prepare()

  const run = db.$client.transaction((request: RecoverRequest): RecoveredExecution[] => {
    const params = { now: request.now, limit: request.limit, owner: request.everyOwnerBut ?? '' }
    const candidates = (request.everyOwnerBut === undefined ? selectExpired : selectForeign).all(params)
    const recovered: RecoveredExecution[] = []
    for (const c of candidates) {
      const status = c.failures + 1 < c.maxAttempts ? 'queued' : 'failed'
      const ref = { id: c.id, attempt: c.attempt, now: request.now, error: request.error }
      if ((status === 'queued' ? requeue : abandon).run(ref).changes === 0) continue
      appendHistory({
        executionId: c.id,
        at: request.now,
        fromStatus: 'running',
        toStatus: status,
        attempt: c.attempt,
        detail: `{"transition":"${status === 'queued' ? 'recover' : 'abandon'}","error":${request.error}}`,
      })
      const cancelledChildren =
        status === 'failed' && request.cancelChildrenError !== undefined
          ? cancelTree.awaitedChildren(c.id, request.now, request.cancelChildrenError)
          : []
      recovered.push({ id: c.id, taskId: c.taskId, attempt: c.attempt, status, cancelledChildren })
      if (status === 'failed' && c.parentId !== null && c.wakesParent === 1)
        wake(c.parentId, request.now, `child ${c.id} failed`)
    }
    return recovered
  })
  return (request: RecoverRequest) => run(request)
}
