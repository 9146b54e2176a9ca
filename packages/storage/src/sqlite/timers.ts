import { CANCELLABLE_STATUSES, WAIT_FOREVER, type HousekeepOutcome, type StatusChange } from '@ratchet/core'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import type { Wake } from './wake'

/**
 * The storage side of the executor's one due timer: `nextDueAt` says when it should fire,
 * `housekeep` does what is due then (wakes waiters, expires deadlines). Kept out of the claim,
 * so a claim never pays for them and concurrent claimers never contend on them.
 */

/**
 * `housekeep`: in one transaction of at most `limit` changed executions, waiting executions
 * whose `run_at` came go back to queued, then queued and waiting ones past their deadline end
 * timed_out (a waiter both due and past its deadline is woken, then expired, as it always was).
 * SQLite has one writer, so it is never `busy`.
 */
export function prepareHousekeep(db: SqliteDb, appendHistory: AppendHistory, wake: Wake) {
  const wakeDue = prepareWakeDueWaiters(db, appendHistory)
  const expire = prepareExpireDeadlines(db, appendHistory, wake)
  return db.$client.transaction((now: number, limit: number): HousekeepOutcome => {
    const changed: StatusChange[] = []
    if (limit <= 0) return { changed, more: false, busy: false }
    // Each part reads at most what is left of the limit; one that fills it may have left more.
    const woken = wakeDue(now, limit, changed)
    if (woken >= limit) return { changed, more: true, busy: false }
    const expired = expire(now, limit - woken, changed)
    return { changed, more: expired >= limit - woken, busy: false }
  })
}

/**
 * Waiting executions whose `run_at` came (a sleep ended, a wait timed out) go back to queued,
 * at most `limit`, earliest first. Walks `executions_waiting_due_idx`. Pushes each change onto
 * `changes`; returns how many rows it read (`limit` when there may be more).
 */
function prepareWakeDueWaiters(db: SqliteDb, appendHistory: AppendHistory) {
  const due = db.$client.prepare<[number, number], { id: string; taskId: string; run: number }>(
    `SELECT id, task_id AS taskId, attempt AS run FROM executions INDEXED BY executions_waiting_due_idx
      WHERE status = 'waiting' AND run_at <= ? ORDER BY run_at LIMIT ?`,
  )
  const requeue = db.$client.prepare<[{ now: number; id: string }]>(
    `UPDATE executions SET status = 'queued', updated_at = @now WHERE id = @id AND status = 'waiting'`,
  )
  return (now: number, limit: number, changes: StatusChange[]): number => {
    const rows = due.all(now, limit)
    for (const row of rows) {
      if (requeue.run({ now, id: row.id }).changes === 0) continue
      appendHistory({
        executionId: row.id,
        at: now,
        fromStatus: 'waiting',
        toStatus: 'queued',
        run: row.run,
        detail: '{"transition":"wake","reason":"due"}',
      })
      changes.push({ id: row.id, taskId: row.taskId, from: 'waiting', to: 'queued', run: row.run })
    }
    return rows.length
  }
}

/**
 * Queued and waiting executions past their deadline end `timed_out` (running ones are timed
 * out by their run's timer), the `expire` transition: like every end as timed_out, a failed
 * attempt (failures + 1). A parent waiting on one is woken. At most `limit`, earliest deadline
 * first. Pushes each expiry onto `changes`; returns how many rows it read.
 */
function prepareExpireDeadlines(db: SqliteDb, appendHistory: AppendHistory, wake: Wake) {
  const expired = db.$client.prepare<
    [number, number],
    {
      id: string
      taskId: string
      run: number
      status: 'queued' | 'waiting'
      parentId: string | null
      wakesParent: number
    }
  >(
    `SELECT id, task_id AS taskId, attempt AS run, status, parent_id AS parentId, wakes_parent AS wakesParent
       FROM executions INDEXED BY executions_deadline_idx
      WHERE deadline_at IS NOT NULL AND status IN ('queued', 'waiting') AND deadline_at <= ?
      ORDER BY deadline_at LIMIT ?`,
  )
  const timeOut = db.$client.prepare<[{ error: string; now: number; id: string }]>(
    `UPDATE executions SET status = 'timed_out', error = @error, failures = failures + 1, finished_at = @now, updated_at = @now
      WHERE id = @id AND status IN (${CANCELLABLE_STATUSES.filter((s) => s !== 'running')
        .map((s) => `'${s}'`)
        .join(', ')})`,
  )
  const error = JSON.stringify({
    name: 'DeadlineExceededError',
    message: 'the execution ran past its deadline',
    code: 'DEADLINE_EXCEEDED',
    retryable: false,
  })
  return (now: number, limit: number, changes: StatusChange[]): number => {
    const rows = expired.all(now, limit)
    for (const row of rows) {
      if (timeOut.run({ error, now, id: row.id }).changes === 0) continue
      appendHistory({
        executionId: row.id,
        at: now,
        fromStatus: row.status,
        toStatus: 'timed_out',
        run: row.run,
        detail: `{"transition":"expire","error":${error}}`,
      })
      changes.push({
        id: row.id,
        taskId: row.taskId,
        from: row.status,
        to: 'timed_out',
        run: row.run,
      })
      if (row.parentId !== null && row.wakesParent === 1) wake(row.parentId, now, `child ${row.id} timed_out`)
    }
    return rows.length
  }
}

/**
 * `nextDueAt`: the earliest of a queued execution's run_at (of these tasks, unless paused), a waiting one's
 * wake time and a queued or waiting one's deadline (of any task: `housekeep` serves every
 * task). Raw SQL because each part must walk its partial index in order and stop at the first
 * row (INDEXED BY, which drizzle cannot express); without it SQLite scans every queued row.
 * The task list is bound as JSON, so one statement serves all.
 */
export function prepareNextDueAt(db: SqliteDb) {
  const none = WAIT_FOREVER
  // min() of SQLite returns NULL if any argument is NULL: each part falls back to `none`.
  const statement = db.$client.prepare<[{ ids: string }], { dueAt: number }>(
    `SELECT min(
       coalesce((SELECT run_at FROM executions INDEXED BY executions_due_idx
         WHERE status = 'queued' AND task_id IN (SELECT value FROM json_each(@ids)
           WHERE value NOT IN (SELECT task_id FROM task_queues WHERE paused_at IS NOT NULL))
         ORDER BY run_at LIMIT 1), ${none}),
       coalesce((SELECT run_at FROM executions INDEXED BY executions_waiting_due_idx
         WHERE status = 'waiting' AND run_at < ${none} ORDER BY run_at LIMIT 1), ${none}),
       coalesce((SELECT deadline_at FROM executions INDEXED BY executions_deadline_idx
         WHERE deadline_at IS NOT NULL AND status IN ('queued', 'waiting') ORDER BY deadline_at LIMIT 1), ${none})
     ) AS dueAt`,
  )
  return (taskIds: readonly string[]): number | null => {
    const ids = JSON.stringify(taskIds)
    const next = statement.get({ ids })?.dueAt ?? none
    return next >= none ? null : next
  }
}
