import type { CopiedTableName } from './tables'

export interface CopySqliteToPostgresOptions {
  /** The SQLite database file of a stopped server. Opened read-only; never written. */
  sqliteFilename: string
  /** The PostgreSQL database to fill (`postgres://user:password@host:5432/database`): no Ratchet rows. */
  postgresUrl: string
  /** Rows sent per INSERT. @default 5000 */
  batchRows?: number
  /** A batch is also sent once its text values reach this many characters. @default 8 MiB */
  batchChars?: number
  /** How long the copy waits for the Ratchet tables' lock (another session writing). @default 10000 */
  lockTimeoutMs?: number
  /** How long connecting may take before PostgreSQL counts as unreachable. @default 10000 */
  connectTimeoutMs?: number
  /** Called after every batch the database accepted: for progress on big databases. */
  onProgress?: (progress: CopyProgress) => void
  /** Called as the copy enters each stage after the rows (long ones on big databases). */
  onStage?: (stage: CopyStage) => void
  /** @default the `migrations/sqlite` folder shipped with @ratchet/storage */
  sqliteMigrationsFolder?: string
  /** @default the `migrations/postgres` folder shipped with @ratchet/storage */
  postgresMigrationsFolder?: string
}

export interface CopyProgress {
  table: CopiedTableName
  /** Rows of `table` copied so far. */
  copied: number
  /** Rows of `table` in the SQLite database. */
  total: number
}

/** The stages after the rows are in: rebuilding the indexes, counting, COMMIT, ANALYZE. */
export type CopyStage = 'indexing' | 'verifying' | 'committing' | 'analyzing'

export interface CopyReport {
  /** Rows per table, as counted in both databases before the commit (they were equal). */
  tables: { table: CopiedTableName; rows: number }[]
  /** Executions not finished when the SQLite server stopped: a server on PostgreSQL runs them. */
  unfinished: { queued: number; waiting: number; running: number }
  /**
   * The latest lease of a `running` execution (epoch ms), or null: those belonged to a server
   * that was killed; a server on PostgreSQL recovers each once its lease has expired.
   */
  lastLeaseExpiresAt: number | null
  /** Wall time of the whole copy, checks and migrations included. */
  ms: number
}
