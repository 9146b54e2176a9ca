import type { TaskStatsRow, ThroughputQuery, ThroughputRow } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `taskStats`: per task, counts by status and the due part of its queue. */
export function taskStats(_database: PostgresDatabase, _now: number): Promise<TaskStatsRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}

/** `throughput`: ended and started executions per bucket. */
export function throughput(_database: PostgresDatabase, _query: ThroughputQuery): Promise<ThroughputRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}
