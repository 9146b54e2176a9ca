import { sql } from 'drizzle-orm'
import type { SqliteDb } from './database'
import { executionHistory } from './schema'

/** Appends one history row. Runs inside the caller's transaction. */
export function prepareAppendHistory(db: SqliteDb) {
  const statement = db
    .insert(executionHistory)
    .values({
      executionId: sql.placeholder('executionId'),
      at: sql.placeholder('at'),
      fromStatus: sql.placeholder('fromStatus'),
      toStatus: sql.placeholder('toStatus'),
      attempt: sql.placeholder('attempt'),
      detail: sql.placeholder('detail'),
      event: sql.placeholder('event'),
      name: sql.placeholder('name'),
    })
    .prepare()
  return (row: {
    executionId: string
    at: number
    fromStatus: string | null
    toStatus: string
    attempt: number
    detail: string | null
    /** @default 'status' */
    event?: string
    name?: string | null
  }) => statement.run({ event: 'status', name: null, ...row })
}

export type AppendHistory = ReturnType<typeof prepareAppendHistory>
