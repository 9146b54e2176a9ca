import type { SqliteDb } from './database'

/**
 * Appends one history row. Runs inside the caller's transaction. Raw SQL on the driver: every
 * transition appends a row, so drizzle's per-call placeholder filling is worth skipping.
 */
export function prepareAppendHistory(db: SqliteDb) {
  const statement = db.$client.prepare(
    `INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail, event, name)
     VALUES (@executionId, @at, @fromStatus, @toStatus, @run, @detail, @event, @name)`,
  )
  return (row: {
    executionId: string
    at: number
    fromStatus: string | null
    toStatus: string
    /** The run it happened in (stored in the `attempt` column). */
    run: number
    detail: string | null
    /** @default 'status' */
    event?: string
    name?: string | null
  }) =>
    statement.run({
      executionId: row.executionId,
      at: row.at,
      fromStatus: row.fromStatus,
      toStatus: row.toStatus,
      run: row.run,
      detail: row.detail,
      event: row.event ?? 'status',
      name: row.name ?? null,
    })
}

export type AppendHistory = ReturnType<typeof prepareAppendHistory>
