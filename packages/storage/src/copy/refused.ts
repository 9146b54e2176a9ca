/** Why a copy was refused; nothing was written to PostgreSQL (see {@link CopyRefusedError}). */
export type CopyRefusal =
  /** No file at the SQLite path. */
  | 'sqlite-missing'
  /** The file is not a SQLite database, or not Ratchet's. */
  | 'sqlite-not-ratchet'
  /** The SQLite database is at another migration than this version's (run `ratchet migrate`). */
  | 'sqlite-schema'
  /** The PostgreSQL database does not store text as UTF-8. */
  | 'target-encoding'
  /** The PostgreSQL database already holds Ratchet rows. */
  | 'target-not-empty'
  /** Another session kept the Ratchet tables locked past `lockTimeoutMs`. */
  | 'target-busy'
  /** A SQLite value PostgreSQL cannot store as it is (not a UUID, a NUL character, out of range). */
  | 'row-not-copyable'
  /** The rows counted in PostgreSQL before the commit differ from SQLite's (rolled back). */
  | 'count-mismatch'

/**
 * The copy did not happen, for the reason its message explains to the user (naming what it
 * found); PostgreSQL is left as it was, apart from migrations applied to an empty database.
 */
export class CopyRefusedError extends Error {
  constructor(
    readonly reason: CopyRefusal,
    message: string,
  ) {
    super(message)
    this.name = 'CopyRefusedError'
  }
}
