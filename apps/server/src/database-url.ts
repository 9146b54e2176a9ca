/**
 * What a `DATABASE_URL` names: a SQLite file (`file:<path>`, `sqlite:<path>` or a bare path) or
 * a PostgreSQL database (`postgres://…`, `postgresql://…`). The one place that tells them apart.
 */
export type DatabaseTarget =
  | { kind: 'sqlite'; filename: string }
  | {
      kind: 'postgres'
      url: string
      /** The URL with its password replaced by `***`: what logs and messages show. */
      redacted: string
    }

const POSTGRES_URL = /^postgres(ql)?:\/\//i

/**
 * Parses a `DATABASE_URL`. Throws an error naming DATABASE_URL (never echoing a password) for a
 * PostgreSQL URL that does not parse or a SQLite URL without a file name.
 */
export function databaseTarget(databaseUrl: string): DatabaseTarget {
  if (POSTGRES_URL.test(databaseUrl)) {
    let parsed: URL
    try {
      parsed = new URL(databaseUrl)
    } catch {
      throw new Error(
        `DATABASE_URL: "${redactDatabaseUrl(databaseUrl)}" is not a valid PostgreSQL URL (postgres://user:password@host:5432/database)`,
      )
    }
    if (parsed.pathname === '' || parsed.pathname === '/')
      throw new Error(
        `DATABASE_URL: "${redactDatabaseUrl(databaseUrl)}" names no database (postgres://user:password@host:5432/<database>)`,
      )
    return { kind: 'postgres', url: databaseUrl, redacted: redactDatabaseUrl(databaseUrl) }
  }
  const match = /^(?:file|sqlite):(?:\/\/)?(.+)$/i.exec(databaseUrl)
  const filename = match ? match[1]! : databaseUrl
  if (!filename) throw new Error(`DATABASE_URL: no file name in "${databaseUrl}"`)
  return { kind: 'sqlite', filename }
}

/** `databaseUrl` with the password of a `scheme://user:password@host` URL replaced by `***`. */
export function redactDatabaseUrl(databaseUrl: string): string {
  return databaseUrl.replace(/^([a-z][\w+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@')
}
