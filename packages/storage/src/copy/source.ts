import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { CopyReport } from './options'
import { quote } from './quote'
import { CopyRefusedError } from './refused'
import type { CopiedTable, CopiedTableName } from './tables'

/** The SQLite side of the copy: the source file checked, opened read-only and counted. */

/** What SQLite holds, counted in the copy's snapshot. */
export interface Snapshot {
  rows: Map<CopiedTableName, number>
  /** The highest value of each table's identity column (absent: no rows). */
  maxIdentity: Map<CopiedTableName, bigint>
  report: Omit<CopyReport, 'ms'>
}

export function openSource(
  filename: string,
  tables: readonly CopiedTable[],
  migrationsFolder: string,
): Database.Database {
  let db: Database.Database
  try {
    db = new Database(filename, { readonly: true, fileMustExist: true })
  } catch (error) {
    throw new CopyRefusedError(
      'sqlite-not-ratchet',
      `cannot open ${filename} as SQLite: ${(error as Error).message}`,
    )
  }
  try {
    checkSourceSchema(db, filename, tables, migrationsFolder)
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** Refuses a file that is not Ratchet's SQLite database at this version's last migration. */
function checkSourceSchema(
  db: Database.Database,
  filename: string,
  tables: readonly CopiedTable[],
  migrationsFolder: string,
): void {
  let present: Set<string>
  try {
    present = new Set(
      db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .pluck()
        .all()
        .map((name) => String(name)),
    )
  } catch (error) {
    throw new CopyRefusedError(
      'sqlite-not-ratchet',
      `${filename} is not a SQLite database (${(error as Error).message})`,
    )
  }
  const missing = tables.filter((t) => !present.has(t.name)).map((t) => t.name)
  if (missing.length > 0 || !present.has('__drizzle_migrations'))
    throw new CopyRefusedError(
      'sqlite-not-ratchet',
      `${filename} is not a Ratchet database: it has no ${[...missing, ...(present.has('__drizzle_migrations') ? [] : ['__drizzle_migrations'])].join(', ')} table`,
    )
  const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { when: number; tag: string }[]
  }
  const latest = journal.entries.at(-1)!
  const applied = Number(db.prepare('SELECT max(created_at) FROM __drizzle_migrations').pluck().get() ?? 0)
  if (applied < latest.when)
    throw new CopyRefusedError(
      'sqlite-schema',
      `${filename} was last migrated by an older Ratchet (this one's last migration is ${latest.tag}): ` +
        `run \`ratchet migrate --database-url file:${filename}\` with this version first, then copy`,
    )
  if (applied > latest.when)
    throw new CopyRefusedError(
      'sqlite-schema',
      `${filename} was migrated by a newer Ratchet than this one (its last migration here is ${latest.tag}): ` +
        'copy it with that version',
    )
  for (const table of tables) {
    const columns = new Set(
      (db.prepare(`PRAGMA table_info(${quote(table.name)})`).all() as { name: string }[]).map((c) => c.name),
    )
    const absent = table.columns.filter((c) => !columns.has(c.name)).map((c) => c.name)
    if (absent.length > 0)
      throw new CopyRefusedError(
        'sqlite-schema',
        `${filename}: ${table.name} has no column ${absent.join(', ')}, though its migrations are applied`,
      )
  }
}

export function readSnapshot(db: Database.Database, tables: readonly CopiedTable[]): Snapshot {
  const rows = new Map<CopiedTableName, number>()
  const maxIdentity = new Map<CopiedTableName, bigint>()
  for (const table of tables) {
    rows.set(
      table.name,
      Number(
        db
          .prepare(`SELECT count(*) FROM ${quote(table.name)}`)
          .pluck()
          .get(),
      ),
    )
    if (table.identity) {
      const max = db
        .prepare(`SELECT max(${quote(table.identity)}) FROM ${quote(table.name)}`)
        .pluck()
        .safeIntegers(true)
        .get() as bigint | null
      if (max !== null) maxIdentity.set(table.name, max)
    }
  }
  const byStatus = new Map(
    (
      db
        .prepare(
          "SELECT status, count(*) AS n, max(lease_expires_at) AS lease FROM executions WHERE status IN ('queued', 'waiting', 'running') GROUP BY status",
        )
        .all() as { status: string; n: number; lease: number | null }[]
    ).map((row) => [row.status, row]),
  )
  return {
    rows,
    maxIdentity,
    report: {
      tables: tables.map((t) => ({ table: t.name, rows: rows.get(t.name)! })),
      unfinished: {
        queued: byStatus.get('queued')?.n ?? 0,
        waiting: byStatus.get('waiting')?.n ?? 0,
        running: byStatus.get('running')?.n ?? 0,
      },
      lastLeaseExpiresAt: byStatus.get('running')?.lease ?? null,
    },
  }
}
