export { openSqliteStorage, SqliteStorage } from './sqlite/sqlite-storage'
export { openPostgresStorage, PostgresStorage } from './postgres/postgres-storage'
export type { PostgresStorageOptions } from './postgres/postgres-storage'
export type { LeaseClock } from './postgres/database'
export { POSTGRES_MIGRATIONS_FOLDER, SQLITE_MIGRATIONS_FOLDER } from './migrations-folder'
export type { SqliteStorageOptions } from './sqlite/sqlite-storage'
export { copySqliteToPostgres, CopyRefusedError } from './copy/sqlite-to-postgres'
export type {
  CopySqliteToPostgresOptions,
  CopyProgress,
  CopyReport,
  CopyRefusal,
  CopyStage,
} from './copy/sqlite-to-postgres'
export type { CopiedTableName } from './copy/tables'
export { acquireProcessLock, DatabaseInUseError } from './sqlite/process-lock'
export type { ProcessLock } from './sqlite/process-lock'
export * as sqliteSchema from './sqlite/schema'
export * as postgresSchema from './postgres/schema'
