import type { ClaimOutcome, ClaimRequest } from '@ratchet/core'
import { executionColumns, executionRowOf } from '../execution-columns'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import { preparePausedTasks } from './task-queues'

/**
 * `claim`: queued → running for up to `limit` due executions, fairly across tasks: each task's
 * due executions are read in its own order (highest priority, oldest run_at, id) with one seek
 * of `executions_claim_idx`, and the batch takes them round-robin across tasks, strictly by
 * priority first. A burst of one task (a fan-out of thousands of children) so cannot hold up
 * every other task's work. Paused tasks (`task_queues`) are passed over. Nothing else: the
 * timers' work is `housekeep`'s (timers.ts). SQLite has one writer, so no row is claimed twice.
 */
export function prepareClaim(db: SqliteDb, appendHistory: AppendHistory) {
  // A task's due executions are read one priority at a time, each with a range seek of
  // `executions_claim_idx` (status, task, priority, run_at ≤ now): rows scheduled for later are
  // never visited. One read over every priority (ORDER BY priority DESC, run_at) cannot stop at
  // the first future row of a priority, so it scanned every future row whenever fewer than
  // `limit` were due: 100,000 reminders an hour ahead made each claim read 100,000 rows.
  const dueAt = db.$client.prepare<
    [{ taskId: string; priority: number; now: number; limit: number }],
    { id: string; priority: number; runAt: number }
  >(
    `SELECT id, priority, run_at AS runAt FROM executions INDEXED BY executions_claim_idx
      WHERE status = 'queued' AND task_id = @taskId AND priority = @priority AND run_at <= @now
      ORDER BY run_at, id LIMIT @limit`,
  )
  // The task's next lower priority with queued executions: a skip-scan, one seek per priority.
  const nextPriority = db.$client.prepare<[{ taskId: string; below: number }], { priority: number }>(
    `SELECT priority FROM executions INDEXED BY executions_claim_idx
      WHERE status = 'queued' AND task_id = @taskId AND priority < @below
      ORDER BY priority DESC LIMIT 1`,
  )
  /** Up to `limit` due executions of a task in claim order: highest priority, oldest run_at, id. */
  const due = {
    all({ taskId, now, limit }: { taskId: string; now: number; limit: number }) {
      const rows: { id: string; priority: number; runAt: number }[] = []
      for (let below = Number.MAX_SAFE_INTEGER; rows.length < limit;) {
        const next = nextPriority.get({ taskId, below })
        if (!next) break
        rows.push(...dueAt.all({ taskId, priority: next.priority, now, limit: limit - rows.length }))
        below = next.priority
      }
      return rows
    },
  }
  // The next task id (in index order) with a queued execution: a skip-scan of the claim
  // index, one seek per task that has queued work, whatever the number of registered tasks.
  const nextQueuedTask = db.$client.prepare<[{ after: string }], { taskId: string }>(
    `SELECT task_id AS taskId FROM executions INDEXED BY executions_claim_idx
      WHERE status = 'queued' AND task_id > @after ORDER BY task_id LIMIT 1`,
  )
  const pausedTasks = preparePausedTasks(db)
  /** The tasks with queued executions, but paused ones (`task_queues`). */
  function tasksWithQueued(): Set<string> {
    const found = new Set<string>()
    const paused = pausedTasks()
    for (let after = ''; ;) {
      const row = nextQueuedTask.get({ after })
      if (!row) return found
      if (!paused.has(row.taskId)) found.add(row.taskId)
      after = row.taskId
    }
  }

  // Raw SQL on the driver, as the enqueue's insert: drizzle's mapping of RETURNING rows cost
  // about as much as the update itself. Read as arrays and built by one object literal
  // (executionRowOf): cheaper than the driver's objects keyed by column name.
  const take = db.$client
    .prepare<[{ ids: string; now: number; owner: string; leaseExpiresAt: number }], unknown[]>(
      `UPDATE executions
        SET status = 'running', attempt = attempt + 1, claimed_at = @now, lease_owner = @owner,
            lease_expires_at = @leaseExpiresAt, started_at = coalesce(started_at, @now), updated_at = @now,
            wake_pending = 0
      WHERE id IN (SELECT value FROM json_each(@ids)) AND status = 'queued'
      RETURNING ${executionColumns()}`,
    )
    .raw(true)

  type Candidate = { id: string; priority: number; runAt: number; rank: number; turn: number }
  const byClaimOrder = (a: Candidate, b: Candidate) =>
    b.priority - a.priority ||
    a.rank - b.rank ||
    a.turn - b.turn ||
    a.runAt - b.runAt ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  // Where the round-robin starts: after the last task served, so small batches (one free
  // slot at a time) rotate through the tasks too, instead of always favouring the oldest.
  let nextTurn = 0

  /** The ids to claim, in claim order: by priority, then round-robin across tasks, then run_at. */
  function pick(taskIds: readonly string[], now: number, limit: number): string[] {
    const n = taskIds.length
    const start = nextTurn % n
    // Only tasks with queued work are read (an app may register hundreds of idle tasks); each
    // keeps its turn from its place in the full list, so the rotation is the same either way.
    const queued = tasksWithQueued()
    const active: { taskId: string; turn: number }[] = []
    taskIds.forEach((taskId, i) => {
      if (queued.has(taskId)) active.push({ taskId, turn: (i - start + n) % n })
    })
    if (active.length === 0) return []
    const ranked = (heads: { id: string; priority: number; runAt: number }[][]) =>
      heads
        .flatMap((rows, i) => rows.map((row, rank) => ({ ...row, rank, turn: active[i]!.turn })))
        .sort(byClaimOrder)
    // First each task's fair share; most claims need no more reads than that.
    const quota = Math.ceil(limit / active.length)
    const heads = active.map(({ taskId }) => due.all({ taskId, now, limit: quota }))
    let chosen = ranked(heads).slice(0, limit)
    // A task cut at its share may hold more rows that belong in the batch: when the batch is
    // not full (the busy tasks fill it), or when its next row may outrank a chosen one (a
    // higher priority). Those tasks are read up to `limit`.
    const lowest = chosen.length < limit ? -Infinity : chosen.at(-1)!.priority
    let reread = false
    for (let i = 0; i < active.length; i++) {
      const rows = heads[i]!
      if (rows.length < quota || rows.at(-1)!.priority <= lowest) continue
      heads[i] = due.all({ taskId: active[i]!.taskId, now, limit })
      reread = true
    }
    if (reread) chosen = ranked(heads).slice(0, limit)
    const last = chosen.at(-1)
    if (last) nextTurn = (start + last.turn + 1) % n
    return chosen.map((c) => c.id)
  }

  const run = db.$client.transaction((request: ClaimRequest): ClaimOutcome => {
    const ids = pick(request.taskIds, request.now, request.limit)
    if (ids.length === 0) return { claimed: [], drained: true }
    const rows = take
      .all({
        ids: JSON.stringify(ids),
        now: request.now,
        owner: request.owner,
        leaseExpiresAt: request.now + request.leaseMs,
      })
      .map(executionRowOf)
    // RETURNING gives no order; start them in claim order.
    const order = new Map(ids.map((id, i) => [id, i]))
    rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!)
    const detail = JSON.stringify({ worker: request.owner })
    for (const row of rows) {
      appendHistory({
        executionId: row.id,
        at: request.now,
        fromStatus: 'queued',
        toStatus: 'running',
        run: row.runs,
        detail,
      })
    }
    // One writer, and `pick` reads every due row up to `limit`: fewer means none is left.
    return { claimed: rows, drained: rows.length < request.limit }
  })
  return (request: ClaimRequest): ClaimOutcome =>
    request.limit <= 0 || request.taskIds.length === 0 ? { claimed: [], drained: false } : run(request)
}
