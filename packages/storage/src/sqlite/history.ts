import type { SqliteDb } from './database'

/**
 * Appends one history row. Runs inside the caller's transaction. Raw SQL on the driver: every
 * transition appends a row, so drizzle's per-call placeholder filling is worth skipping.
 *
 * The seq is the rowid, which SQLite makes one more than the largest in the table: it never
 * goes back as long as the row with the largest seq is never deleted. Purge keeps it (see
 * purge.ts); continueAsNew, which may delete it with its generation's history, gives its
 * `continue` row an explicit `seq` above the largest one before the delete.
 */
export function prepareAppendHistory(db: SqliteDb) {
  const statement = db.$client.prepare(
    `INSERT INTO execution_history (execution_id, at, from_status, to_status, attempt, detail, event, name)
     VALUES (@executionId, @at, @fromStatus, @toStatus, @run, @detail, @event, @name)`,
  )
  const withSeq = db.$client.prepare(
    `INSERT INTO execution_history (seq, execution_id, at, from_status, to_status, attempt, detail, event, name)
     VALUES (@seq, @executionId, @at, @fromStatus, @toStatus, @run, @detail, @event, @name)`,
  )
  return (row: {
    /** An explicit seq (continueAsNew); by default the next rowid. */
    seq?: number | undefined
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
  }) => {
    const params = {
      executionId: row.executionId,
      at: row.at,
      fromStatus: row.fromStatus,
      toStatus: row.toStatus,
      run: row.run,
      detail: row.detail,
      event: row.event ?? 'status',
      name: row.name ?? null,
    }
    return row.seq === undefined ? statement.run(params) : withSeq.run({ ...params, seq: row.seq })
  }
}

export type AppendHistory = ReturnType<typeof prepareAppendHistory>
