import { acquireProcessLock, openSqliteStorage } from '@ratchet/storage'
import { sqliteFilename } from './config'

/**
 * `ratchet migrate`: applies the pending migrations to the database and closes it. Takes the
 * server's process lock, so it refuses (throws) while a server uses the file; a failed
 * migration is rolled back and throws.
 */
export async function migrateDatabase(databaseUrl: string): Promise<{ filename: string }> {
  const filename = sqliteFilename(databaseUrl)
  const lock = acquireProcessLock(filename)
  try {
    await openSqliteStorage({ filename }).close()
  } finally {
    lock.release()
  }
  return { filename }
}
