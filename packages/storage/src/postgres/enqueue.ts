import {
  ConflictError,
  sameJson,
  type EnqueueOutcome,
  type ExecutionRow,
  type NewExecution,
} from '@ratchet/core'
import { executionColumns } from './columns'
import { statement, type PostgresDatabase, type Statement, type Tx } from './database'
import { appendHistory } from './history-append'
import { notifyWhenRows } from './notify-channels'

/**
 * Inserts queued executions with their `enqueue` history rows (from null to queued, run 0,
 * `detail` as given per row) in one statement; returns the inserted rows. `keyed`: ON
 * CONFLICT DO NOTHING, so a (task_id, idempotency_key) that exists (or is being inserted by a
 * concurrent transaction, which this one then waits for) is skipped instead of failing.
 */
function insertText(keyed: boolean, notify: boolean): string {
  return `WITH rows AS (
      SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::text[],
                           $8::int[], $9::text[], $10::bigint[], $11::uuid[], $12::uuid[], $13::smallint[],
                           $14::bigint[], $15::text[])
        WITH ORDINALITY AS r(id, task_id, input, max_attempts, max_recoveries, timeout_ms, backoff, priority,
                             idempotency_key, run_at, parent_id, root_id, wakes_parent, deadline_at, detail, ord)
    ),
    inserted AS (
      INSERT INTO executions (id, task_id, status, input, max_attempts, max_recoveries, timeout_ms, backoff,
                              priority, idempotency_key, run_at, parent_id, root_id, wakes_parent, deadline_at,
                              created_at, updated_at)
      SELECT id, task_id, 'queued', input, max_attempts, max_recoveries, timeout_ms, backoff, priority,
             idempotency_key, run_at, parent_id, root_id, wakes_parent, deadline_at, $16, $16
        FROM rows ORDER BY ord
      ${keyed ? 'ON CONFLICT DO NOTHING' : ''}
      RETURNING ${executionColumns()}
    ),
    history AS (
      INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail)
      SELECT i.id, $16, NULL, 'queued', 0, r.detail FROM inserted i JOIN rows r ON r.id = i.id ORDER BY r.ord
    )
    SELECT inserted.* FROM inserted${notify ? `, ${notifyWhenRows('inserted', '$17')}` : ''}`
}

/** Autocommitted, for batches without idempotency keys: sends its own notices. */
const INSERT_ALONE = statement('enqueue_insert', insertText(false, true))
/** Inside a transaction (keys, children of a step, events): the transaction sends the notices. */
const INSERT_IN_TX = statement('enqueue_insert_keyed', insertText(true, false))

/**
 * A debounced enqueue: inserts, or (ON CONFLICT on `executions_debounce_uq`: the key's
 * execution that is queued and has never run) gives that execution this input and run_at,
 * bounded by its created_at + maxWaitMs ($17). A claim that took the row first moved it out of
 * the index, and the insert goes ahead: a new burst gets a new execution.
 */
const DEBOUNCED = statement(
  'enqueue_debounced',
  `INSERT INTO executions (id, task_id, status, input, max_attempts, max_recoveries, timeout_ms, backoff,
                           priority, run_at, deadline_at, debounce_key, created_at, updated_at)
   VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
   ON CONFLICT (task_id, debounce_key) WHERE debounce_key IS NOT NULL AND status = 'queued' AND attempt = 0
   DO UPDATE SET input = EXCLUDED.input, updated_at = EXCLUDED.updated_at,
     run_at = CASE WHEN $13::bigint IS NULL THEN EXCLUDED.run_at
                   ELSE least(EXCLUDED.run_at, executions.created_at + $13::bigint) END
   RETURNING ${executionColumns()}`,
)

/** One total order of ids and keys, the same on every replica. */
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

async function enqueueDebounced(tx: Tx, row: NewExecution, now: number): Promise<EnqueueOutcome> {
  const stored = (
    await tx.query<ExecutionRow>(DEBOUNCED, [
      row.id,
      row.taskId,
      row.input,
      row.maxAttempts,
      row.maxRecoveries,
      row.timeoutMs,
      JSON.stringify(row.backoff),
      row.priority,
      row.runAt,
      row.deadlineAt ?? null,
      row.debounce!.key,
      now,
      row.debounce!.maxWaitMs,
    ])
  ).rows[0]!
  if (stored.id !== row.id) return { row: stored, created: false }
  await appendHistory(tx, [
    { executionId: row.id, at: now, fromStatus: null, toStatus: 'queued', run: 0, detail: null },
  ])
  tx.notifyChange()
  return { row: stored, created: true }
}

const BY_KEY = statement(
  'enqueue_by_key',
  `SELECT ${executionColumns()} FROM executions WHERE task_id = $1 AND idempotency_key = $2`,
)

function insertValues(rows: readonly NewExecution[], now: number, details: readonly (string | null)[]) {
  return [
    rows.map((r) => r.id),
    rows.map((r) => r.taskId),
    rows.map((r) => r.input),
    rows.map((r) => r.maxAttempts),
    rows.map((r) => r.maxRecoveries),
    rows.map((r) => r.timeoutMs),
    rows.map((r) => JSON.stringify(r.backoff)),
    rows.map((r) => r.priority),
    rows.map((r) => r.idempotencyKey),
    rows.map((r) => r.runAt),
    rows.map((r) => r.parentId ?? null),
    rows.map((r) => r.rootId ?? null),
    rows.map((r) => (r.wakesParent ? 1 : 0)),
    rows.map((r) => r.deadlineAt ?? null),
    details,
    now,
  ]
}

const dueNow = (rows: readonly { runAt: number }[], now: number) => rows.some((r) => r.runAt <= now)

/**
 * Inserts executions inside `tx` (ON CONFLICT DO NOTHING), each with its history row whose
 * detail is `detailOf(row)`; returns the inserted rows by id (a row whose id or key was taken
 * is absent). Asks for the notices: `ratchet_change`, and `ratchet_wake` when one is due now.
 */
export async function insertExecutions(
  tx: Tx,
  rows: readonly NewExecution[],
  now: number,
  detailOf: (row: NewExecution) => string | null = () => null,
): Promise<Map<string, ExecutionRow>> {
  if (rows.length === 0) return new Map()
  const result = await tx.query<ExecutionRow>(INSERT_IN_TX, insertValues(rows, now, rows.map(detailOf)))
  if (result.rows.length > 0) {
    tx.notifyChange()
    if (dueNow(result.rows, now)) tx.notifyWake()
  }
  return new Map(result.rows.map((row) => [row.id, row]))
}

/**
 * `enqueue` inside a transaction (also publishEvent's): inserts, then reads back the row of
 * every (task_id, idempotency_key) that already existed. A different input (by `sameJson`)
 * throws `ConflictError`, which rolls back the caller's whole transaction.
 */
export async function enqueueInTx(
  tx: Tx,
  rows: readonly NewExecution[],
  now: number,
): Promise<EnqueueOutcome[]> {
  const inserted = await insertExecutions(
    tx,
    rows.filter((r) => !r.debounce),
    now,
  )
  // Debounced rows one statement each (a batch may hold a key twice: the second updates the
  // first), in (task, key) order, so that two transactions upserting the same keys lock them
  // in the same order and cannot deadlock; the sort is stable, so the last input still wins.
  const debounced = new Map<NewExecution, EnqueueOutcome>()
  const byKey = rows
    .filter((r) => r.debounce)
    .sort((a, b) => compare(a.taskId, b.taskId) || compare(a.debounce!.key, b.debounce!.key))
  for (const row of byKey) debounced.set(row, await enqueueDebounced(tx, row, now))
  const outcomes: EnqueueOutcome[] = []
  for (const row of rows) {
    const upserted = debounced.get(row)
    if (upserted) {
      outcomes.push(upserted)
      continue
    }
    const created = inserted.get(row.id)
    if (created) {
      // Taken once: a second row with the same id is a conflict, as on SQLite.
      inserted.delete(row.id)
      outcomes.push({ row: created, created: true })
      continue
    }
    const existing =
      row.idempotencyKey === null
        ? undefined
        : (await tx.query<ExecutionRow>(BY_KEY, [row.taskId, row.idempotencyKey])).rows[0]
    if (!existing)
      throw new Error(`enqueue of ${row.id} conflicted, but no execution holds its idempotency key`)
    // The same input with its keys in another order is the same input (compared canonically
    // only here, on a reused key: the insert path stores the text as it came).
    if (!sameJson(existing.input, row.input)) {
      throw new ConflictError(
        `idempotency key "${row.idempotencyKey}" of task "${row.taskId}" was already used with a different input (execution ${existing.id})`,
        { executionId: existing.id },
      )
    }
    outcomes.push({ row: existing, created: false })
  }
  return outcomes
}

/**
 * `enqueue`: inserts queued executions with their history rows, all or nothing. A batch
 * without idempotency keys is one autocommitted statement (an id taken fails it whole); one
 * with keys is a transaction: a key that exists returns its row with `created: false` when
 * the input is the same JSON value, and throws `ConflictError` (nothing written) when it is
 * not. Concurrent enqueues of one key are safe: the second waits for the first's insert, then
 * reads its row. Throws `StorageUnavailableError` when the database is unreachable.
 */
export async function enqueue(
  database: PostgresDatabase,
  rows: readonly NewExecution[],
  now: number,
): Promise<EnqueueOutcome[]> {
  if (rows.length === 0) return []
  if (rows.some((r) => r.idempotencyKey !== null || r.debounce))
    return database.transaction((tx) => enqueueInTx(tx, rows, now))
  const values = [
    ...insertValues(
      rows,
      now,
      rows.map(() => null),
    ),
    dueNow(rows, now),
  ]
  const result = await database.query<ExecutionRow>(INSERT_ALONE satisfies Statement, values)
  const byId = new Map(result.rows.map((row) => [row.id, row]))
  return rows.map((row) => ({ row: byId.get(row.id)!, created: true }))
}
