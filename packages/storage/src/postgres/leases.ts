import type { RecoverRequest, RecoveredExecution, RunRef } from '@ratchet/core'
import { cancelAwaitedChildren } from './cancel-tree'
import { DATABASE_NOW, statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'
import { appendHistory } from './history-append'
import { wake } from './wake'

/**
 * Pushes out the leases this owner still holds to `leaseNow + leaseMs`, where `leaseNow` is the
 * database's clock unless bound. It waits on no row lock (`SKIP LOCKED`): a heartbeat runs
 * beside this owner's own settle and step-record transactions, which lock a child's row and
 * then its parent's, so a heartbeat that waited in id order while holding rows could close a
 * deadlock with them. A row locked right now that the statement's snapshot shows running under
 * this owner's run comes back `busy`, for `EXTEND_ONE`.
 */
const EXTEND = statement(
  'leases_extend',
  `WITH r AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS r(id, run)),
   locked AS (
     SELECT e.id FROM executions e JOIN r ON r.id = e.id
      WHERE e.id = ANY($1::uuid[]) AND e.attempt = r.run AND e.lease_owner = $3 AND e.status = 'running'
      ORDER BY e.id FOR NO KEY UPDATE OF e SKIP LOCKED
   ),
   extended AS (
     UPDATE executions e SET lease_expires_at = coalesce($4::bigint, ${DATABASE_NOW}) + $5::bigint
       FROM locked WHERE e.id = locked.id AND e.id = ANY($1::uuid[])
     RETURNING e.id, e.attempt AS run
   )
   SELECT id, run, false AS busy FROM extended
   UNION ALL
   SELECT e.id, e.attempt AS run, true AS busy FROM executions e JOIN r ON r.id = e.id
    WHERE e.id = ANY($1::uuid[]) AND e.attempt = r.run AND e.lease_owner = $3 AND e.status = 'running'
      AND e.id NOT IN (SELECT id FROM locked)`,
)

/**
 * One busy lease, waiting for its row. Autocommitted and holding no other lock while it waits,
 * so it cannot be part of a deadlock; it sees the row as the holder leaves it (settled,
 * recovered, or still this owner's run).
 */
const EXTEND_ONE = statement(
  'leases_extend_one',
  `UPDATE executions SET lease_expires_at = coalesce($4::bigint, ${DATABASE_NOW}) + $5::bigint
    WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running'
   RETURNING id, attempt AS run`,
)

/**
 * `extendLeases`: returns the leases (of those given) that are no longer this owner's run
 * (recovered, settled, cancelled); every other one is extended. One autocommitted statement,
 * plus one per lease whose row another transaction held locked right then (see `EXTEND`).
 * Failure semantics: each statement is all or nothing; `StorageUnavailableError` when the
 * database is unreachable (the leases may then expire).
 */
export async function extendLeases(
  database: PostgresDatabase,
  owner: string,
  leases: readonly RunRef[],
  now: number,
  leaseMs: number,
): Promise<RunRef[]> {
  // An id that is not a UUID names no run: lost.
  const named = leases.filter((l) => isStoredId(l.id))
  if (named.length === 0) return [...leases]
  const leaseNow = database.leaseNow(now)
  const result = await database.query<RunRef & { busy: boolean }>(EXTEND, [
    named.map((l) => l.id),
    named.map((l) => l.run),
    owner,
    leaseNow,
    leaseMs,
  ])
  const held = new Set<string>()
  for (const row of result.rows) {
    if (row.busy) {
      const one = await database.query<RunRef>(EXTEND_ONE, [row.id, row.run, owner, leaseNow, leaseMs])
      if (one.rows.length === 0) continue
    }
    held.add(`${row.id}:${row.run}`)
  }
  return leases.filter((l) => !held.has(`${l.id}:${l.run}`))
}

type Candidate = {
  id: string
  taskId: string
  run: number
  recoveries: number
  maxRecoveries: number
  parentId: string | null
  wakesParent: number
}

/**
 * Running executions whose lease expired by the lease clock (or, with `everyOwnerBut`, owned by
 * another), locked in id order. A row locked right now (its run writing a step record or
 * settling) is waited for, then judged again as it is after that write: settled, it is no
 * longer running; still running, its lease expired all the same and the record counts as
 * progress.
 */
const candidates = (everyOwnerBut: boolean) =>
  statement(
    everyOwnerBut ? 'leases_lost_foreign' : 'leases_lost_expired',
    `SELECT id, task_id AS "taskId", attempt AS run, recoveries, max_recoveries AS "maxRecoveries",
            parent_id AS "parentId", wakes_parent AS "wakesParent"
       FROM executions
      WHERE status = 'running'
        AND (lease_expires_at < coalesce($1::bigint, ${DATABASE_NOW})${everyOwnerBut ? ' OR lease_owner <> $3' : ''})
      ORDER BY id LIMIT $2
      FOR NO KEY UPDATE`,
  )
const EXPIRED = candidates(false)
const FOREIGN = candidates(true)

/**
 * Which of the locked runs recorded progress (a step record created or completed since its
 * claim; a run claimed before `claimed_at` existed counts any record). Read after the lock, so
 * a record committed just before it counts.
 */
const PROGRESSED = statement(
  'leases_progressed',
  `SELECT e.id FROM executions e
    WHERE e.id = ANY($1::uuid[])
      AND EXISTS (SELECT 1 FROM execution_steps s
                   WHERE s.execution_id = e.id
                     AND (s.created_at >= coalesce(e.claimed_at, 0) OR s.completed_at >= coalesce(e.claimed_at, 0)))`,
)

const REQUEUE = statement(
  'leases_requeue',
  `UPDATE executions SET status = 'queued', run_at = $3, recoveries = $4,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
    WHERE id = $1 AND attempt = $2 AND status = 'running'`,
)
const ABANDON = statement(
  'leases_abandon',
  `UPDATE executions SET status = 'failed', error = $4, failures = failures + 1, finished_at = $3,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
    WHERE id = $1 AND attempt = $2 AND status = 'running'`,
)

/**
 * `recoverLeases`: running executions whose lease expired lost their run to a crash. Not a
 * failed attempt: queued again, due now, with `recoveries` + 1 (1 when the lost run recorded
 * progress); past `max_recoveries` it ends `failed` instead (`abandon`, a failed attempt),
 * wakes the parent awaiting it and, with `cancelChildrenError`, cancels the children it
 * awaited. Expiry is judged by the lease clock (the database's unless `caller`), so a replica
 * whose clock runs ahead cannot take a live lease. One transaction; each update is fenced by
 * (id, run, status = running) under the row lock. Failure semantics: all or nothing;
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function recoverLeases(
  database: PostgresDatabase,
  request: RecoverRequest,
): Promise<RecoveredExecution[]> {
  const now = request.now
  return database.transaction(async (tx) => {
    const found = await tx.query<Candidate>(request.everyOwnerBut === undefined ? EXPIRED : FOREIGN, [
      database.leaseNow(now),
      request.limit,
      ...(request.everyOwnerBut === undefined ? [] : [request.everyOwnerBut]),
    ])
    if (found.rows.length === 0) return []
    const progressedIds = new Set(
      (await tx.query<{ id: string }>(PROGRESSED, [found.rows.map((c) => c.id)])).rows.map((r) => r.id),
    )
    const recovered: RecoveredExecution[] = []
    for (const c of found.rows) {
      const progressed = progressedIds.has(c.id)
      const recoveries = progressed ? 1 : c.recoveries + 1
      let detail: string
      let status: 'queued' | 'failed'
      if (recoveries <= c.maxRecoveries) {
        if ((await tx.query(REQUEUE, [c.id, c.run, now, recoveries])).rowCount === 0) continue
        status = 'queued'
        detail = `{"transition":"recover","error":${request.error},"recoveries":${recoveries},"progressed":${progressed}}`
        tx.notifyWake()
      } else {
        const error = request.exhaustedError(c.maxRecoveries)
        if ((await tx.query(ABANDON, [c.id, c.run, now, error])).rowCount === 0) continue
        status = 'failed'
        detail = `{"transition":"abandon","error":${error},"lost":${request.error},"recoveries":${c.recoveries},"progressed":${progressed}}`
      }
      await appendHistory(tx, [
        { executionId: c.id, at: now, fromStatus: 'running', toStatus: status, run: c.run, detail },
      ])
      const cancelledChildren =
        status === 'failed' && request.cancelChildrenError !== undefined
          ? await cancelAwaitedChildren(tx, c.id, now, request.cancelChildrenError)
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
        await wake(tx, c.parentId, now, `child ${c.id} failed`)
    }
    return recovered
  })
}
