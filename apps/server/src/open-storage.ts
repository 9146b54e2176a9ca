import { resolve as resolvePath } from 'node:path'
import { StorageUnavailableError, type Storage } from '@ratchet/core'
import {
  acquireProcessLock,
  DatabaseInUseError,
  openPostgresStorage,
  openSqliteStorage,
} from '@ratchet/storage'
import { databaseTarget } from './database-url'

export interface StorageSettings {
  /** `file:<path>` (SQLite) or `postgres://…` (PostgreSQL). */
  databaseUrl: string
  /** SQLite only. @default 'normal' */
  sqliteSynchronous?: 'normal' | 'full' | undefined
  /** PostgreSQL only: connections in the pool. @default 10 */
  pgPoolSize?: number | undefined
  /** The migrations folder of the URL's dialect. @default the one shipped with @ratchet/storage */
  migrationsFolder?: string | undefined
  /** PostgreSQL only: `pg_stat_activity.application_name`. @default 'ratchet' */
  applicationName?: string | undefined
}

export interface ServerStorage {
  storage: Storage
  /** What logs show: the SQLite file's absolute path, or the PostgreSQL URL without its password. */
  database: string
  /**
   * One round trip to a database that can become unreachable while the server runs
   * (PostgreSQL), for `/readyz`; absent for a SQLite file, which is part of this process.
   */
  ping?: () => Promise<unknown>
  /** Closes the storage, then releases the SQLite process lock. */
  close(): Promise<void>
}

/**
 * Opens (and migrates) the database of `databaseUrl`. SQLite: takes the process lock first (one
 * server process per file), so a second server is refused before it touches the file.
 * PostgreSQL: a pool of `pgPoolSize`, migrations under an advisory lock (replicas starting
 * together migrate once), leases on the database's clock; no process lock, replicas share it.
 *
 * Failure semantics: rejects with an error meant for the operator (the file in use, the
 * database unreachable — a `StorageUnavailableError` naming the URL without its password — or
 * a failed migration); nothing stays open then.
 */
export async function openServerStorage(settings: StorageSettings): Promise<ServerStorage> {
  const target = databaseTarget(settings.databaseUrl)
  if (target.kind === 'postgres') {
    let storage: Awaited<ReturnType<typeof openPostgresStorage>>
    try {
      storage = await openPostgresStorage({
        url: target.url,
        ...(settings.pgPoolSize !== undefined ? { poolSize: settings.pgPoolSize } : {}),
        ...(settings.migrationsFolder ? { migrationsFolder: settings.migrationsFolder } : {}),
        leaseClock: 'database',
        applicationName: settings.applicationName ?? 'ratchet',
      })
    } catch (error) {
      if (!(error instanceof StorageUnavailableError)) throw error
      const cause = error.cause instanceof Error ? error.cause.message : error.message
      throw new StorageUnavailableError(
        `cannot reach the PostgreSQL database ${target.redacted} (${cause}); check DATABASE_URL and that the database is up`,
        { cause: error },
      )
    }
    return {
      storage,
      database: target.redacted,
      ping: () => storage.database.query('SELECT 1'),
      close: () => storage.close(),
    }
  }
  const { filename } = target
  // One server process per SQLite file: taken before migrations and lease recovery.
  const lock = lockDatabase(filename)
  try {
    const storage = openSqliteStorage({
      filename,
      ...(settings.sqliteSynchronous ? { synchronous: settings.sqliteSynchronous } : {}),
      ...(settings.migrationsFolder ? { migrationsFolder: settings.migrationsFolder } : {}),
    })
    return {
      storage,
      database: resolvePath(filename),
      async close() {
        try {
          await storage.close()
        } finally {
          lock.release()
        }
      },
    }
  } catch (error) {
    lock.release()
    throw error
  }
}

/** The process lock of the database, refused with what this server can do about it. */
function lockDatabase(filename: string) {
  try {
    return acquireProcessLock(filename)
  } catch (error) {
    if (!(error instanceof DatabaseInUseError)) throw error
    throw new Error(
      `another Ratchet server is using ${error.filename} (its lock file ${error.lockFile} is held). ` +
        'One server process runs per SQLite file: stop the other server, start this one on another ' +
        'file (DATABASE_URL=file:<path>), or move to PostgreSQL to run several (see "Scale out" in the README)',
      { cause: error },
    )
  }
}
