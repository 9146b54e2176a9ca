import type { HistoryQuery, HistoryRow } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `history`: an execution's history rows, oldest first. */
export function readHistory(
  _database: PostgresDatabase,
  _id: string,
  _options?: HistoryQuery,
): Promise<HistoryRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}
