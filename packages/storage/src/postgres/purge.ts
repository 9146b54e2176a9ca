import type { PurgeOutcome, PurgeRequest } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `purge`: deletes finished trees past their retention, at most `limit` rows. */
export function purge(_database: PostgresDatabase, _request: PurgeRequest): Promise<PurgeOutcome> {
  return Promise.reject(new Error('not implemented yet'))
}

/** `reclaimSpace`: PostgreSQL reclaims space by itself (autovacuum). */
export function reclaimSpace(
  _database: PostgresDatabase,
  _maxPages: number,
): Promise<{ freedPages: number; freePages: number }> {
  return Promise.reject(new Error('not implemented yet'))
}
