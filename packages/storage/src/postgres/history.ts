import type { HistoryQuery, HistoryRow } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { isStoredId } from './ids'

/**
 * An execution's rows by seq, over execution_history_execution_idx (execution_id, seq): all of
 * them or those after a seq, optionally status transitions only, up to a limit (`LIMIT NULL`
 * is no limit). Per execution, seqs follow commit order (every transaction that appends an
 * execution's history holds its row lock), so paging by `afterSeq` never skips a row.
 */
const READ = statement(
  'history_read',
  `SELECT seq, execution_id AS "executionId", at, from_status AS "from", to_status AS "to", attempt AS run,
          detail, event, name
     FROM execution_history
    WHERE execution_id = $1 AND seq > $2 AND ($3::boolean IS FALSE OR event = 'status')
    ORDER BY seq
    LIMIT $4`,
)

/**
 * `history`: the execution's history, oldest first; empty for an unknown id. One autocommitted
 * statement. Failure semantics: an unreachable database throws `StorageUnavailableError`.
 */
export async function readHistory(
  database: PostgresDatabase,
  id: string,
  options: HistoryQuery = {},
): Promise<HistoryRow[]> {
  if (!isStoredId(id)) return []
  const result = await database.query<HistoryRow>(READ, [
    id,
    options.afterSeq ?? -1,
    options.statusOnly === true,
    options.limit ?? null,
  ])
  return result.rows
}
