import type { ChangeRow, ChangesQuery } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `changesSince`: status transitions after a cursor, in (xid, seq) order. */
export function changesSince(_database: PostgresDatabase, _query: ChangesQuery): Promise<ChangeRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}

/** `changeCursor`: the cursor of the latest change ('' when none). */
export function changeCursor(_database: PostgresDatabase): Promise<string> {
  return Promise.reject(new Error('not implemented yet'))
}
