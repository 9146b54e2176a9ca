import type { StepRow, StepsQuery } from '@ratchet/core'
import type { PostgresDatabase } from './database'

// Stub: the read side lands with i12-pgr (H4), which replaces these bodies.

/** `steps`: an execution's durable record by position. */
export function readSteps(_database: PostgresDatabase, _id: string, _query: StepsQuery): Promise<StepRow[]> {
  return Promise.reject(new Error('not implemented yet'))
}
