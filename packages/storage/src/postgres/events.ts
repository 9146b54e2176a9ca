import type { EventRow, NewExecution, PublishOutcome } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `publishEvent`: the event and the executions it starts, in one transaction. */
export function publishEvent(
  _database: PostgresDatabase,
  _event: EventRow,
  _executions: readonly NewExecution[],
  _now: number,
): Promise<PublishOutcome> {
  return Promise.reject(new Error('not implemented yet'))
}

/** `listEvents`: recorded events, newest first. */
export function listEvents(
  _database: PostgresDatabase,
  _query: { type?: string; beforeId?: string; limit: number },
): Promise<EventRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}
