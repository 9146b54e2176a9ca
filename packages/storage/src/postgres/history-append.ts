import type { ExecutionStatus } from '@ratchet/core'
import { statement, type Tx } from './database'

/** One history row to append. */
export interface HistoryEntry {
  executionId: string
  at: number
  fromStatus: ExecutionStatus | null
  toStatus: ExecutionStatus
  /** The run it happened in (stored in the `attempt` column). */
  run: number
  detail: string | null
  /** @default 'status' */
  event?: string
  name?: string | null
}

const APPEND = statement(
  'history_append',
  `INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail, event, name)
   SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[])
   RETURNING seq`,
)

/**
 * Appends history rows in the caller's transaction, in the given order (seqs increase along
 * it), and asks for `ratchet_change` at commit when one is a status transition. The caller
 * holds the row lock of every execution it appends for (so each execution's seqs follow
 * commit order). Returns the seqs.
 */
export async function appendHistory(tx: Tx, entries: readonly HistoryEntry[]): Promise<number[]> {
  if (entries.length === 0) return []
  const result = await tx.query<{ seq: number }>(APPEND, [
    entries.map((e) => e.executionId),
    entries.map((e) => e.at),
    entries.map((e) => e.fromStatus),
    entries.map((e) => e.toStatus),
    entries.map((e) => e.run),
    entries.map((e) => e.detail),
    entries.map((e) => e.event ?? 'status'),
    entries.map((e) => e.name ?? null),
  ])
  if (entries.some((e) => (e.event ?? 'status') === 'status')) tx.notifyChange()
  return result.rows.map((r) => r.seq)
}
