import { isTerminalStatus, type SignalOutcome } from '@ratchet/core'
import { statement, type PostgresDatabase } from './database'
import { lockExecution, readExecution } from './get'
import { isStoredId } from './ids'
import { appendHistory } from './history-append'
import { wake } from './wake'

const INSERT = statement(
  'signal_insert',
  `INSERT INTO execution_signals (execution_id, name, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING seq`,
)

/**
 * `signal`: stores a signal in a non-terminal execution's inbox, with its history row, and
 * wakes the execution (a wait that does not match simply parks again), in one transaction
 * that holds the execution's row lock from the first read: concurrent signals to one
 * execution queue up behind each other, and none is lost to a park. A finished execution
 * takes no signals. Failure semantics: all or nothing; `StorageUnavailableError` when the
 * database is unreachable.
 */
export async function signal(
  database: PostgresDatabase,
  executionId: string,
  name: string,
  payload: string,
  now: number,
): Promise<SignalOutcome> {
  if (!isStoredId(executionId)) return { result: 'not_found' }
  return database.transaction(async (tx) => {
    const row = await lockExecution(tx, executionId)
    if (!row) return { result: 'not_found' }
    if (isTerminalStatus(row.status)) return { result: 'finished', status: row.status }
    const { seq } = (await tx.query<{ seq: number }>(INSERT, [executionId, name, payload, now])).rows[0]!
    await appendHistory(tx, [
      {
        executionId,
        at: now,
        fromStatus: row.status,
        toStatus: row.status,
        run: row.runs,
        detail: JSON.stringify({ seq }),
        event: 'signal',
        name,
      },
    ])
    await wake(tx, executionId, now, `signal ${name}`)
    return { result: 'stored', seq, row: (await readExecution(tx, executionId)) ?? row }
  })
}
