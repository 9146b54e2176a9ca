import type { StepWrite, StepWriteResult } from '@ratchet/core'
import { statement, type PostgresDatabase, type Tx } from './database'
import { insertExecutions } from './enqueue'
import { isUniqueViolation } from './errors'
import { isStoredId } from './ids'
import { appendHistory, type HistoryEntry } from './history-append'

/**
 * The fence of every run that writes, taken once per transaction: its execution row locked
 * (FOR NO KEY UPDATE, in id order) and still running under that run. The lock is what makes
 * the fence hold until commit: a recovery, a cancel or a settlement of that row waits for it.
 */
const FENCE = statement(
  'steps_fence',
  `SELECT e.id, e.attempt AS run, e.root_id AS "rootId"
     FROM executions e JOIN unnest($1::uuid[], $2::int[]) AS f(id, run) ON f.id = e.id AND f.run = e.attempt
    WHERE e.status = 'running'
    ORDER BY e.id
    FOR NO KEY UPDATE OF e`,
)

/**
 * Upserts step records at their positions. Only a waiting record is updated: one completed
 * meanwhile (an external wakeup) is not overwritten from a stale read; the attempt is retried
 * and its replay sees it. Returns the records written.
 */
const UPSERT = statement(
  'steps_upsert',
  `INSERT INTO execution_steps (execution_id, position, name, kind, status, value, error, wake_at, child_id,
                                signal_name, wakeup_key, created_at, completed_at)
   SELECT w.execution_id, w.position, w.name, w.kind, w.status, w.value, w.error, w.wake_at, w.child_id,
          w.signal_name, w.wakeup_key, $12, w.completed_at
     FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
                 $9::uuid[], $10::text[], $11::text[], $13::bigint[])
       AS w(execution_id, position, name, kind, status, value, error, wake_at, child_id, signal_name, wakeup_key,
            completed_at)
   ON CONFLICT (execution_id, position) DO UPDATE SET
     status = excluded.status, value = excluded.value, error = excluded.error, wake_at = excluded.wake_at,
     child_id = coalesce(excluded.child_id, execution_steps.child_id), completed_at = excluded.completed_at
   WHERE execution_steps.status = 'waiting'
   RETURNING execution_id AS "executionId", position`,
)

const CONSUME = statement(
  'steps_consume_signals',
  `UPDATE execution_signals g SET consumed_by = c.name, consumed_at = $4
     FROM unnest($1::bigint[], $2::uuid[], $3::text[]) AS c(seq, execution_id, name)
    WHERE g.seq = c.seq AND g.execution_id = c.execution_id AND g.consumed_by IS NULL`,
)

const KEY_HOLDER = statement(
  'steps_key_holder',
  `SELECT execution_id AS "executionId", position FROM execution_steps WHERE wakeup_key = $1`,
)

function upsertValues(writes: readonly StepWrite[], now: number): unknown[] {
  const steps = writes.map((w) => w.step)
  return [
    writes.map((w) => w.executionId),
    steps.map((s) => s.position),
    steps.map((s) => s.name),
    steps.map((s) => s.kind),
    steps.map((s) => s.status),
    steps.map((s) => s.value),
    steps.map((s) => s.error),
    steps.map((s) => s.wakeAt),
    steps.map((s) => s.childId),
    steps.map((s) => s.signalName),
    steps.map((s) => s.wakeupKey),
    now,
    steps.map((s) => (s.status !== 'waiting' ? now : null)),
  ]
}

const eventOf = (kind: string) =>
  kind === 'step'
    ? 'step'
    : kind === 'signal'
      ? 'signal'
      : kind === 'sleep' || kind === 'wakeup'
        ? 'wait'
        : 'child'

/** The history row of a written record; none for a child's end recorded by its parent's run. */
function historyOf(w: StepWrite, now: number): HistoryEntry | undefined {
  const { step } = w
  // The child's own history has its end, and the settlement that records it for a parent
  // writes none either.
  if (step.kind === 'child' && step.status !== 'waiting' && !w.child) return undefined
  return {
    executionId: w.executionId,
    at: now,
    fromStatus: 'running',
    toStatus: 'running',
    run: w.run,
    detail: JSON.stringify({
      kind: step.kind,
      status: step.status,
      ...(step.childId ? { childId: step.childId } : {}),
      ...(step.wakeAt !== null ? { wakeAt: step.wakeAt } : {}),
      ...(step.error ? { error: JSON.parse(step.error) as unknown } : {}),
    }),
    event: eventOf(step.kind),
    name: step.name,
  }
}

/** For the written ones, in order: the signals they consumed, the children they started, their history. */
async function afterWritten(
  tx: Tx,
  written: readonly StepWrite[],
  rootOf: Map<string, string | null>,
  now: number,
) {
  const consuming = written.filter((w) => w.consumeSignalSeq !== undefined)
  if (consuming.length > 0)
    await tx.query(CONSUME, [
      consuming.map((w) => w.consumeSignalSeq),
      consuming.map((w) => w.executionId),
      consuming.map((w) => w.step.name),
      now,
    ])
  const children = written
    .filter((w) => w.child)
    .map((w) => ({
      ...w.child!,
      rootId: w.child!.rootId ?? rootOf.get(w.executionId) ?? w.executionId,
      parentId: w.executionId,
    }))
  await insertExecutions(tx, children, now, (child) => JSON.stringify({ parentId: child.parentId }))
  await appendHistory(
    tx,
    written.map((w) => historyOf(w, now)).filter((h) => h !== undefined),
  )
}

/**
 * `recordSteps`: each write, fenced by its run (its execution row locked and still running
 * under it), upserts one step record and, in the same transaction, marks the signal it consumed
 * and enqueues the child it started. Per write: 'stale' (fence failed), 'conflict' (its wakeup
 * key is another wait's; checked without aborting the batch: a key taken by a concurrent
 * transaction surfaces as a unique violation inside a savepoint), 'superseded' (the record is
 * no longer waiting), else 'written'. A batch without wakeup keys and with distinct positions
 * (a fan-out of children) is written with one statement per kind of write. Failure semantics:
 * all or nothing; `StorageUnavailableError` when the database is unreachable.
 */
export async function recordSteps(
  database: PostgresDatabase,
  writes: readonly StepWrite[],
  now: number,
): Promise<StepWriteResult[]> {
  if (writes.length === 0) return []
  const positions = new Set(writes.map((w) => `${w.executionId}:${w.step.position}`))
  const batched = positions.size === writes.length && writes.every((w) => w.step.wakeupKey === null)
  return database.transaction(async (tx) => {
    // An id that is not a UUID names no run: stale.
    const named = writes.filter((w) => isStoredId(w.executionId))
    const fenced = await tx.query<{ id: string; run: number; rootId: string | null }>(FENCE, [
      named.map((w) => w.executionId),
      named.map((w) => w.run),
    ])
    const owners = new Set(fenced.rows.map((r) => `${r.id}:${r.run}`))
    const rootOf = new Map(fenced.rows.map((r) => [r.id, r.rootId]))
    const results: StepWriteResult[] = writes.map((w) =>
      owners.has(`${w.executionId}:${w.run}`) ? 'written' : 'stale',
    )
    const live = writes.filter((_, i) => results[i] === 'written')
    if (live.length === 0) return results
    if (batched) {
      const done = await tx.query<{ executionId: string; position: number }>(UPSERT, upsertValues(live, now))
      const written = new Set(done.rows.map((r) => `${r.executionId}:${r.position}`))
      writes.forEach((w, i) => {
        if (results[i] === 'written' && !written.has(`${w.executionId}:${w.step.position}`))
          results[i] = 'superseded'
      })
      await afterWritten(
        tx,
        writes.filter((_, i) => results[i] === 'written'),
        rootOf,
        now,
      )
      return results
    }
    for (const [i, w] of writes.entries()) {
      if (results[i] !== 'written') continue
      results[i] = await writeOne(tx, w, now)
      if (results[i] === 'written') await afterWritten(tx, [w], rootOf, now)
    }
    return results
  })
}

/** One write on its own: its wakeup key checked first, its upsert in a savepoint when it has one. */
async function writeOne(tx: Tx, w: StepWrite, now: number): Promise<StepWriteResult> {
  const key = w.step.wakeupKey
  if (key === null)
    return (await tx.query(UPSERT, upsertValues([w], now))).rowCount === 1 ? 'written' : 'superseded'
  const holder = (await tx.query<{ executionId: string; position: number }>(KEY_HOLDER, [key])).rows[0]
  if (holder && (holder.executionId !== w.executionId || holder.position !== w.step.position))
    return 'conflict'
  try {
    // A key taken by a transaction that commits after our check: the unique index catches it,
    // and the savepoint keeps the rest of the batch.
    const count = await tx.savepoint(async () => (await tx.query(UPSERT, upsertValues([w], now))).rowCount)
    return count === 1 ? 'written' : 'superseded'
  } catch (error) {
    if (isUniqueViolation(error, 'execution_steps_wakeup_key_uq')) return 'conflict'
    throw error
  }
}
