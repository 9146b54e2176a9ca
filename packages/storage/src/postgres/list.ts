import type { ExecutionSummaryRow, ListQuery } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `list`: summaries, newest first, filtered and keyset-paginated by id. */
export function listSummaries(
  _database: PostgresDatabase,
  _query: ListQuery,
): Promise<ExecutionSummaryRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}
