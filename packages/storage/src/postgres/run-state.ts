import type { RunState } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'

/**
 * The record, the unconsumed inbox and the states of the children the record still waits for,
 * in one statement (so from one snapshot, as SQLite's read transaction gives them) and one
 * round trip: each part as a JSON array (json, not jsonb: payload texts stay as they are).
 */
const LOAD = statement(
  'run_state_load',
  `SELECT
     (SELECT coalesce(json_agg(json_build_object(
               'executionId', s.execution_id, 'position', s.position, 'name', s.name, 'kind', s.kind,
               'status', s.status, 'value', s.value, 'error', s.error, 'wakeAt', s.wake_at,
               'childId', s.child_id, 'signalName', s.signal_name, 'wakeupKey', s.wakeup_key,
               'createdAt', s.created_at, 'completedAt', s.completed_at) ORDER BY s.position), '[]'::json)
        FROM execution_steps s WHERE s.execution_id = $1) AS steps,
     (SELECT coalesce(json_agg(json_build_object(
               'seq', g.seq, 'executionId', g.execution_id, 'name', g.name, 'payload', g.payload,
               'createdAt', g.created_at, 'consumedBy', g.consumed_by) ORDER BY g.seq), '[]'::json)
        FROM execution_signals g WHERE g.execution_id = $1 AND g.consumed_by IS NULL) AS inbox,
     (SELECT coalesce(json_agg(json_build_object(
               'id', c.id, 'status', c.status, 'output', c.output, 'error', c.error) ORDER BY s.position), '[]'::json)
        FROM execution_steps s JOIN executions c ON c.id = s.child_id
       WHERE s.execution_id = $1 AND s.kind = 'child' AND s.status = 'waiting') AS children`,
)

/**
 * `loadRunState`: what a replay needs. A child the run already consumed is in the record
 * itself (done or failed), so its row is not read again. Failure semantics: a read;
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function loadRunState(database: PostgresDatabase, executionId: string): Promise<RunState> {
  if (!isStoredId(executionId)) return { steps: [], inbox: [], children: [] }
  const result = await database.query<RunState>(LOAD, [executionId])
  return result.rows[0]!
}
