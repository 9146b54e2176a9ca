import type { QueueStats } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `queueStats`: per task with queued executions, how many, how many due, the oldest due. */
export function queueStats(_database: PostgresDatabase, _now: number): Promise<QueueStats[]> {
  return Promise.reject(new Error('not implemented yet'))
}
