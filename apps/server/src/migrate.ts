import { openServerStorage } from './open-storage'

/**
 * `ratchet migrate`: applies the pending migrations to the database and closes it; resolves with
 * the database as logs show it (the SQLite file, or the PostgreSQL URL without its password).
 *
 * SQLite: takes the server's process lock, so it refuses (throws) while a server uses the file.
 * PostgreSQL: runs under the same advisory lock as a starting server, so it may run while
 * replicas run or start (each migration is applied once, in its own transaction). Failure
 * semantics: a failed migration is rolled back and throws; an unreachable PostgreSQL database
 * throws `StorageUnavailableError` naming the URL without its password.
 */
export async function migrateDatabase(databaseUrl: string): Promise<{ database: string }> {
  const opened = await openServerStorage({ databaseUrl, pgPoolSize: 1, applicationName: 'ratchet migrate' })
  await opened.close()
  return { database: opened.database }
}
