export { openSqliteStorage, SqliteStorage, SQLITE_MIGRATIONS_FOLDER } from './sqlite/sqlite-storage'
export type { SqliteStorageOptions } from './sqlite/sqlite-storage'
export * as sqliteSchema from './sqlite/schema'
