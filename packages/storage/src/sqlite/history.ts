import type { SqliteDb } from './database'

/**
 * Appends one history row. Runs inside the caller's transaction. Raw SQL on the driver: every
 * transition appends a row, so drizzle's per-call placeholder filling is worth skipping.
 */
export function prepareAppendHistory(db: SqliteDb) {
  const statement = db.$client.prepare(
    `INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail, event, name)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
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
    // Positional parameters: binding by name looks each one up in an object made per call.
    statement.run(
      row.executionId,
      row.at,
      row.fromStatus,
      row.toStatus,
      row.run,
      row.detail,
      row.event ?? 'status',
      row.name ?? null,
    )
}

export type AppendHistory = ReturnType<typeof prepareAppendHistory>
