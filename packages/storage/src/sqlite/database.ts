import type Database from 'better-sqlite3'
import { sql, type SQL } from 'drizzle-orm'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import type * as schema from './schema'

export type SqliteDb = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

/** A named placeholder usable where drizzle expects a value expression (e.g. in `set`). */
export function param(name: string): SQL {
  return sql`${sql.placeholder(name)}`
}
