import { eq, sql } from 'drizzle-orm'
import { isTerminalStatus, type SignalOutcome } from '@ratchet/core'
import type { SqliteDb } from './database'
import type { AppendHistory } from './history'
import { executions } from './schema'
import type { Wake } from './wake'

/**
 * `signal`: stores a signal in a non-terminal execution's inbox and wakes the execution
 * (a wait that does not match simply parks again). A finished execution takes no signals.
 */
export function prepareSignal(db: SqliteDb, appendHistory: AppendHistory, wake: Wake) {
  const read = db
    .select()
    .from(executions)
    .where(eq(executions.id, sql.placeholder('id')))
    .prepare()
  const insert = db.$client.prepare<[string, string, string, number]>(
    `INSERT INTO execution_signals (execution_id, name, payload, created_at) VALUES (?, ?, ?, ?)`,
  )
  const run = db.$client.transaction(
    (executionId: string, name: string, payload: string, now: number): SignalOutcome => {
      const row = read.get({ id: executionId })
      if (!row) return { result: 'not_found' }
      if (isTerminalStatus(row.status)) return { result: 'finished', status: row.status }
      const seq = Number(insert.run(executionId, name, payload, now).lastInsertRowid)
      appendHistory({
        executionId,
        at: now,
        fromStatus: row.status,
        toStatus: row.status,
        run: row.runs,
        detail: JSON.stringify({ seq }),
        event: 'signal',
        name,
      })
      wake(executionId, now, `signal ${name}`)
      return { result: 'stored', seq, row: read.get({ id: executionId }) ?? row }
    },
  )
  return (executionId: string, name: string, payload: string, now: number) =>
    run(executionId, name, payload, now)
}
