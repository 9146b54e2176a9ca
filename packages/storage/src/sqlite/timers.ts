import { CANCELLABLE_STATUSES, type StatusChange } from '@ratchet/core'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import type { Wake } from './wake'

/**
 * Waiting executions whose `run_at` came (a sleep ended, a wait timed out) go back to
 * queued. Walks `executions_waiting_due_idx`; runs inside the claim's transaction. Pushes each
 * change onto `changes`.
 */
export function prepareWakeDueWaiters(db: SqliteDb, appendHistory: AppendHistory) {
  const due = db.$client.prepare<[number], { id: string; taskId: string; run: number }>(
    `SELECT id, task_id AS taskId, attempt AS run FROM executions INDEXED BY executions_waiting_due_idx
      WHERE status = 'waiting' AND run_at <= ? LIMIT 1000`,
  )
  const requeue = db.$client.prepare<[{ now: number; id: string }]>(
    `UPDATE executions SET status = 'queued', updated_at = @now WHERE id = @id AND status = 'waiting'`,
  )
  return (now: number, changes: StatusChange[]) => {
    for (const row of due.all(now)) {
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
  }
}

/**
 * Queued and waiting executions past their deadline end `timed_out` (running ones are timed
 * out by their run's timer), the `expire` transition: like every end as timed_out, a failed
 * attempt (failures + 1). A parent waiting on one is woken. Pushes each expiry onto `changes`.
 */
export function prepareExpireDeadlines(db: SqliteDb, appendHistory: AppendHistory, wake: Wake) {
  const expired = db.$client.prepare<
    [number],
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
      WHERE deadline_at IS NOT NULL AND status IN ('queued', 'waiting') AND deadline_at <= ? LIMIT 1000`,
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
  return (now: number, changes: StatusChange[]) => {
    for (const row of expired.all(now)) {
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
  }
}
