import type { CancelledExecution, Settlement, SettleOutcome } from '@ratchet/core'
import { cancelAwaitedChildren } from './cancel-tree'
import { statement, type PostgresDatabase, type Tx } from './database'
import { isStoredId } from './ids'
import { notifyWhenRows } from './notify-channels'
import { wake } from './wake'

/**
 * Writes a group of settlements in one statement: locks their rows in id order (`locked`),
 * keeps per execution the first settlement whose fence holds (`s`: the first moves it out of
 * `running`, so any later one of the same id fails, as one by one), applies each transition
 * fenced by (id, run, status = running) (`settled`), and appends the history rows
 * (`history`). Returns, per applied settlement, its index, new status and the seq of its
 * history row.
 *
 * Per transition, as on SQLite: complete → completed (output, no error, finished); retry →
 * queued at `run_at` (error, failures + 1); release → queued now (error; recoveries kept); park
 * → waiting until `run_at`, or queued now when a wake-up came while it ran (`wake_pending`,
 * read under the row lock: a wake committed before is seen, one after finds it waiting);
 * continue → queued now as the next generation (input, failures 0, no error); fail / time_out
 * (error, failures + 1, finished). Every one frees the lease, and all but a release reset
 * `recoveries` (the run ended by itself).
 */
function applyText(alone: boolean): string {
  return `WITH batch AS (
     SELECT * FROM unnest($1::int[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                          $8::text[], $9::text[])
       AS b(idx, id, run, transition, output, error, run_at, input, detail)
   ),
   locked AS (
     SELECT e.id, e.attempt FROM executions e
      WHERE e.id = ANY($2::uuid[]) AND e.status = 'running'
      ORDER BY e.id
      FOR NO KEY UPDATE
   ),
   s AS (
     SELECT DISTINCT ON (b.id) b.* FROM batch b JOIN locked ON locked.id = b.id AND locked.attempt = b.run
      ORDER BY b.id, b.idx
   ),
   settled AS (
     UPDATE executions e SET
       status = CASE s.transition
         WHEN 'complete' THEN 'completed' WHEN 'fail' THEN 'failed' WHEN 'time_out' THEN 'timed_out'
         WHEN 'park' THEN CASE WHEN e.wake_pending = 1 THEN 'queued' ELSE 'waiting' END
         ELSE 'queued' END,
       output = CASE WHEN s.transition = 'complete' THEN s.output ELSE e.output END,
       error = CASE WHEN s.transition IN ('complete', 'continue') THEN NULL
                    WHEN s.transition = 'park' THEN e.error ELSE s.error END,
       run_at = CASE s.transition
         WHEN 'park' THEN CASE WHEN e.wake_pending = 1 THEN $10 ELSE s.run_at END
         WHEN 'continue' THEN $10 WHEN 'retry' THEN s.run_at WHEN 'release' THEN s.run_at
         ELSE e.run_at END,
       failures = CASE WHEN s.transition IN ('retry', 'fail', 'time_out') THEN e.failures + 1
                       WHEN s.transition = 'continue' THEN 0 ELSE e.failures END,
       recoveries = CASE WHEN s.transition = 'release' THEN e.recoveries ELSE 0 END,
       finished_at = CASE WHEN s.transition IN ('complete', 'fail', 'time_out') THEN $10 ELSE e.finished_at END,
       wake_pending = CASE WHEN s.transition IN ('park', 'continue') THEN 0 ELSE e.wake_pending END,
       input = CASE WHEN s.transition = 'continue' THEN s.input ELSE e.input END,
       generation = CASE WHEN s.transition = 'continue' THEN e.generation + 1 ELSE e.generation END,
       lease_owner = NULL, lease_expires_at = NULL, updated_at = $10
     FROM s
     WHERE e.id = s.id AND e.id = ANY($2::uuid[]) AND e.attempt = s.run AND e.status = 'running'
     RETURNING s.idx, e.id, e.status, e.generation, s.run, s.transition, s.detail, s.run_at
   ),
   history AS (
     INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
     SELECT id, $10, 'running', status, run,
            CASE WHEN transition = 'park' AND status = 'queued' THEN '{"transition":"park","woken":true}'
                 WHEN transition = 'continue' THEN '{"transition":"continue","generation":' || generation || '}'
                 ELSE detail END
       FROM settled ORDER BY idx
     RETURNING execution_id, seq
   )
   SELECT settled.idx, settled.status, history.seq FROM settled JOIN history ON history.execution_id = settled.id
   ${alone ? `, ${notifyWhenRows('settled', WAKES)}` : ''}`
}

/** Whether a settled row is claimable now (requeued, and not a retry with a back-off to wait). */
const WAKES = `EXISTS (SELECT 1 FROM settled WHERE status = 'queued' AND (transition <> 'retry' OR run_at <= $10))`

/** Inside the settle transaction, which sends the notices and runs the side effects. */
const APPLY = statement('settle_apply', applyText(false))
/** Autocommitted, for a batch without side effects (the common case): sends its own notices. */
export const APPLY_ALONE = statement('settle_apply_alone', applyText(true))

// The previous generation's record, consumed signals and history (continueAsNew). The history
// goes once the `continue` row is written, below its seq, so that row's seq is above every one
// before it.
const FORGET_STEPS = statement('settle_forget_steps', `DELETE FROM execution_steps WHERE execution_id = $1`)
const FORGET_SIGNALS = statement(
  'settle_forget_signals',
  `DELETE FROM execution_signals WHERE execution_id = $1 AND consumed_by IS NOT NULL`,
)
const FORGET_HISTORY = statement(
  'settle_forget_history',
  `DELETE FROM execution_history WHERE execution_id = $1 AND seq < $2`,
)

/**
 * The parent's record of this child, if it still waits on it, under the parent's row lock (it
 * is the parent's record): by primary key, no history row (the child's own history has its end).
 */
const RECORD_IN_PARENT = statement(
  'settle_record_in_parent',
  `WITH parent AS (SELECT id FROM executions WHERE id = $1 FOR NO KEY UPDATE)
   UPDATE execution_steps SET status = $4, value = $5, error = $6, completed_at = $7
    WHERE execution_id = (SELECT id FROM parent) AND position = $2 AND child_id = $3
      AND kind = 'child' AND status = 'waiting'`,
)

/**
 * Locks, in id order (the adapter's lock order), the settled executions together with the
 * parents their settlements write into. Without it a child's settlement would lock its own row
 * and then its parent's, the reverse of id order whenever the parent's id sorts first (it
 * usually does), and deadlock with a step record or another settlement holding both.
 */
const LOCK_FAMILY = statement(
  'settle_lock_family',
  `SELECT id FROM executions WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
)

/** The history detail of a transition known before it is applied (park and continue: see APPLY). */
function detailOf(s: Settlement, runAt: number | null): string | null {
  switch (s.transition) {
    case 'complete':
    case 'continue':
      return null
    case 'park':
      return `{"transition":"park","wakeAt":${s.runAt}}`
    case 'retry':
    case 'release':
      return `{"transition":"${s.transition}","runAt":${runAt},"error":${s.error}}`
    case 'fail':
    case 'time_out':
      // The record whose failure ended the run: what a rerun forgets (see rerun.ts).
      return s.failedStep
        ? `{"error":${s.error},"failedStep":${JSON.stringify(s.failedStep)}}`
        : `{"error":${s.error}}`
  }
}

function runAtOf(s: Settlement, now: number): number | null {
  if (s.transition === 'park') return s.runAt
  // Due after the back-off from now, the time of this write (and of its history row).
  if (s.transition === 'retry') return now + s.delayMs
  return s.transition === 'release' ? now : null
}

function validate(s: Settlement): void {
  if (s.transition === 'park' && !Number.isFinite(s.runAt))
    throw new TypeError(`settlement of ${s.id}: runAt must be a finite time, got ${String(s.runAt)}`)
  if (s.transition === 'retry' && !(Number.isFinite(s.delayMs) && s.delayMs >= 0))
    throw new TypeError(`settlement of ${s.id}: delayMs must be a number >= 0, got ${String(s.delayMs)}`)
}

/**
 * Splits the batch where running it as groups could differ from running it one settlement at a
 * time (as SQLite does): before a settlement of an execution that an earlier one of the group
 * wakes or records into, and after one that cancels children (any later one may be below it).
 */
function groups(settlements: readonly Settlement[]): Settlement[][] {
  const result: Settlement[][] = []
  let current: Settlement[] = []
  let touched = new Set<string>()
  let cancels = false
  for (const s of settlements) {
    if (current.length > 0 && (cancels || touched.has(s.id))) {
      result.push(current)
      current = []
      touched = new Set()
      cancels = false
    }
    current.push(s)
    if (s.wakeParentId) touched.add(s.wakeParentId)
    if (s.parentRecord) touched.add(s.parentRecord.parentId)
    if (s.cancelChildren) cancels = true
  }
  if (current.length > 0) result.push(current)
  return result
}

type Applied = { idx: number; status: string; seq: number }

/** The statement's arrays; a settlement whose id is not a UUID names no run (left out: not applied). */
export function applyValues(all: readonly Settlement[], now: number): unknown[] {
  const indexes = [...all.keys()].filter((i) => isStoredId(all[i]!.id))
  const group = indexes.map((i) => all[i]!)
  const runAts = group.map((s) => runAtOf(s, now))
  return [
    indexes,
    group.map((s) => s.id),
    group.map((s) => s.run),
    group.map((s) => s.transition),
    group.map((s) => (s.transition === 'complete' ? s.output : null)),
    group.map((s) => ('error' in s ? s.error : null)),
    runAts,
    group.map((s) => (s.transition === 'continue' ? s.input : null)),
    group.map((s, i) => detailOf(s, runAts[i]!)),
    now,
  ]
}

/** Whether a settlement writes more than its own row and history (then it needs the transaction). */
const hasSideEffects = (s: Settlement) =>
  s.transition === 'continue' || !!s.wakeParentId || !!s.parentRecord || !!s.cancelChildren

async function settleGroup(
  tx: Tx,
  group: readonly Settlement[],
  now: number,
  cancelled: CancelledExecution[],
): Promise<boolean[]> {
  const result = await tx.query<Applied>(APPLY, applyValues(group, now))
  const applied = group.map(() => false)
  const outcomes = new Map(result.rows.map((row) => [row.idx, row]))
  if (outcomes.size > 0) tx.notifyChange()
  for (const [i, s] of group.entries()) {
    const outcome = outcomes.get(i)
    if (!outcome) continue
    applied[i] = true
    const to = outcome.status
    if (to === 'queued' && (s.transition !== 'retry' || s.delayMs <= 0)) tx.notifyWake()
    if (s.transition === 'continue') {
      await tx.query(FORGET_STEPS, [s.id])
      await tx.query(FORGET_SIGNALS, [s.id])
      await tx.query(FORGET_HISTORY, [s.id, outcome.seq])
    }
    const ended = to !== 'queued' && to !== 'waiting'
    if (ended && s.parentRecord) {
      const { parentId, position, outcome: child } = s.parentRecord
      await tx.query(RECORD_IN_PARENT, [
        parentId,
        position,
        s.id,
        child.status,
        child.status === 'done' ? child.value : null,
        child.status === 'failed' ? child.error : null,
        now,
      ])
    }
    if (ended && s.wakeParentId) await wake(tx, s.wakeParentId, now, `child ${s.id} ${to}`)
    if ((ended || s.transition === 'continue') && s.cancelChildren)
      cancelled.push(...(await cancelAwaitedChildren(tx, s.id, now, s.cancelChildren.error)))
  }
  return applied
}

/**
 * `settle`: writes finished runs in one transaction, each fenced by (id, run, status =
 * running); a stale one changes nothing and reports `false`. One that ends its execution
 * records its outcome in its parent's record (`parentRecord`), wakes the parent awaiting it
 * and, with `cancelChildren`, cancels the children it still awaited; a `continue` deletes the
 * previous generation's record, consumed signals and history. Usually one statement for the
 * whole batch (autocommitted when no settlement has side effects) plus one per side effect
 * (see `groups`). Failure semantics: an invalid
 * settlement throws `TypeError` before anything is written; otherwise all or nothing, with
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function settle(
  database: PostgresDatabase,
  settlements: readonly Settlement[],
  now: number,
): Promise<SettleOutcome> {
  if (settlements.length === 0) return { applied: [], cancelled: [] }
  settlements.forEach(validate)
  if (!settlements.some(hasSideEffects)) {
    const result = await database.query<Applied>(APPLY_ALONE, applyValues(settlements, now))
    const applied = settlements.map(() => false)
    for (const row of result.rows) applied[row.idx] = true
    return { applied, cancelled: [] }
  }
  const batches = groups(settlements)
  const parents = settlements.flatMap((s) => [s.wakeParentId, s.parentRecord?.parentId])
  const family = [...new Set([...settlements.map((s) => s.id), ...parents])].filter(
    (id): id is string => typeof id === 'string' && isStoredId(id),
  )
  return database.transaction(async (tx) => {
    if (parents.some((id) => typeof id === 'string')) await tx.query(LOCK_FAMILY, [family])
    const cancelled: CancelledExecution[] = []
    const applied: boolean[] = []
    for (const group of batches) applied.push(...(await settleGroup(tx, group, now, cancelled)))
    return { applied, cancelled }
  })
}
