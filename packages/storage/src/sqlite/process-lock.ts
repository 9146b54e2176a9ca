import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'

export interface ProcessLock {
  /** Releases the lock (also released by the OS when the process dies, even by SIGKILL). */
  release(): void
}

/** Another process holds the lock of this SQLite database (see {@link acquireProcessLock}). */
export class DatabaseInUseError extends Error {
  constructor(
    /** The database file. */
    readonly filename: string,
    /** The lock file another process holds. */
    readonly lockFile: string,
    options?: { cause?: unknown },
  ) {
    super(
      `another Ratchet server is using ${filename} (its lock file ${lockFile} is held): only one ` +
        'server process may use a SQLite file. Stop the other server, or use another database file',
      options,
    )
    this.name = 'DatabaseInUseError'
  }
}

/**
 * Makes sure only one server process uses a SQLite database: the SQLite adapter is
 * single-writer, so at start-up it recovers every lease not its own at once, and a second
 * process would run the first one's executions again.
 *
 * The lock is an exclusive transaction held on a side file, `<database>.lock`, for the life
 * of the process: an OS file lock, so it dies with the process and never goes stale, and the
 * database itself stays readable by other tools. Throws `DatabaseInUseError`, naming the file,
 * when another process holds it. A `:memory:` database needs no lock.
 */
export function acquireProcessLock(filename: string): ProcessLock {
  if (filename === ':memory:') return { release: () => {} }
  const path = `${resolve(filename)}.lock`
  mkdirSync(dirname(path), { recursive: true })
  const lock = new Database(path, { timeout: 0 })
  try {
    lock.pragma('locking_mode = EXCLUSIVE')
    lock.exec('BEGIN EXCLUSIVE')
  } catch (error) {
    lock.close()
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new DatabaseInUseError(resolve(filename), path, { cause: error })
    }
    throw error
  }
  return {
    release() {
      if (!lock.open) return
      lock.exec('ROLLBACK')
      lock.close()
    },
  }
}
