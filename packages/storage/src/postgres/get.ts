import type { ExecutionRow } from '@ratchet/core'
import { executionColumns } from './columns'
import { statement, type PostgresDatabase, type Tx } from './database'
import { isStoredId } from './ids'

const BY_ID = statement('get', `SELECT ${executionColumns()} FROM executions WHERE id = $1`)
const LOCK_BY_ID = statement(
  'get_for_update',
  `SELECT ${executionColumns()} FROM executions WHERE id = $1 FOR NO KEY UPDATE`,
)

/** `get`: one execution by id; `undefined` when unknown (an id that is not a UUID included). */
export async function getExecution(
  database: PostgresDatabase,
  id: string,
): Promise<ExecutionRow | undefined> {
  if (!isStoredId(id)) return undefined
  return (await database.query<ExecutionRow>(BY_ID, [id])).rows[0]
}

/** One execution by id inside `tx`, as committed now (a fresh read, no lock). */
export async function readExecution(tx: Tx, id: string): Promise<ExecutionRow | undefined> {
  return (await tx.query<ExecutionRow>(BY_ID, [id])).rows[0]
}

/**
 * One execution by id inside `tx`, its row locked (FOR NO KEY UPDATE) until the transaction
 * ends: what a method reads before it writes history for it.
 */
export async function lockExecution(tx: Tx, id: string): Promise<ExecutionRow | undefined> {
  return (await tx.query<ExecutionRow>(LOCK_BY_ID, [id])).rows[0]
}
