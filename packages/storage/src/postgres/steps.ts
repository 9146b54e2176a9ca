import type { StepRow, StepsQuery } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'

/** One page of an execution's record by position: a range of its primary key (execution_id, position). */
const READ = statement(
  'steps_read',
  `SELECT execution_id AS "executionId", position, name, kind, status, value, error, wake_at AS "wakeAt",
          child_id AS "childId", signal_name AS "signalName", wakeup_key AS "wakeupKey",
          created_at AS "createdAt", completed_at AS "completedAt"
     FROM execution_steps
    WHERE execution_id = $1 AND position > $2
    ORDER BY position
    LIMIT $3`,
)

/**
 * `steps`: the execution's durable record after `afterPosition`, at most `limit`; empty for an
 * unknown id. One autocommitted statement. Failure semantics: an unreachable database throws
 * `StorageUnavailableError`.
 */
export async function readSteps(
  database: PostgresDatabase,
  id: string,
  query: StepsQuery,
): Promise<StepRow[]> {
  if (!isStoredId(id)) return []
  const result = await database.query<StepRow>(READ, [id, query.afterPosition ?? -1, query.limit])
  return result.rows
}
