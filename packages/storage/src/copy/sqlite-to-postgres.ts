import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import pg from 'pg'
import { StorageUnavailableError } from '@ratchet/core'
import { POSTGRES_MIGRATIONS_FOLDER, SQLITE_MIGRATIONS_FOLDER } from '../migrations-folder'
import { createPool } from '../postgres/database'
import { isUnavailable } from '../postgres/errors'
import { migratePostgres } from '../postgres/migrate'
import { acquireProcessLock } from '../sqlite/process-lock'
import { copiedTables, type CopiedTable, type CopiedTableName } from './tables'

/**
 * `ratchet copy-sqlite`: a stopped server's SQLite database copied into an empty PostgreSQL
 * database, every row and column as it is, in one PostgreSQL transaction.
 */

export interface CopySqliteToPostgresOptions {
  /** The SQLite database file of a stopped server. Opened read-only; never written. */
  sqliteFilename: string
  /** The PostgreSQL database to fill (`postgres://user:password@host:5432/database`): no Ratchet rows. */
  postgresUrl: string
  /** Rows sent per INSERT. @default 5000 */
  batchRows?: number
  /** A batch is also sent once its text values reach this many characters. @default 8 MiB */
  batchChars?: number
  /** How long the copy waits for the Ratchet tables' lock (another session writing). @default 10000 */
  lockTimeoutMs?: number
  /** How long connecting may take before PostgreSQL counts as unreachable. @default 10000 */
  connectTimeoutMs?: number
  /** Called after every batch the database accepted: for progress on big databases. */
  onProgress?: (progress: CopyProgress) => void
  /** Called as the copy enters each stage after the rows (long ones on big databases). */
  onStage?: (stage: CopyStage) => void
  /** @default the `migrations/sqlite` folder shipped with @ratchet/storage */
  sqliteMigrationsFolder?: string
  /** @default the `migrations/postgres` folder shipped with @ratchet/storage */
  postgresMigrationsFolder?: string
}

export interface CopyProgress {
  table: CopiedTableName
  /** Rows of `table` copied so far. */
  copied: number
  /** Rows of `table` in the SQLite database. */
  total: number
}

/** The stages after the rows are in: rebuilding the indexes, counting, COMMIT, ANALYZE. */
export type CopyStage = 'indexing' | 'verifying' | 'committing' | 'analyzing'

export interface CopyReport {
  /** Rows per table, as counted in both databases before the commit (they were equal). */
  tables: { table: CopiedTableName; rows: number }[]
  /** Executions not finished when the SQLite server stopped: a server on PostgreSQL runs them. */
  unfinished: { queued: number; waiting: number; running: number }
  /**
   * The latest lease of a `running` execution (epoch ms), or null: those belonged to a server
   * that was killed; a server on PostgreSQL recovers each once its lease has expired.
   */
  lastLeaseExpiresAt: number | null
  /** Wall time of the whole copy, checks and migrations included. */
  ms: number
}

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

/**
 * Copies the SQLite database of a stopped server into an empty PostgreSQL database: every row
 * of executions, execution_history, execution_steps, execution_signals and events (idempotency
 * keys and wake-up keys are columns of those), ids, seqs and every value as they are (JSON text
 * stays text), so the executions carry on where they were on a server started on PostgreSQL.
 *
 * In order: holds the SQLite process lock (as a server does) for the whole copy; reads the
 * SQLite file read-only in one snapshot; refuses a PostgreSQL database that is not UTF-8 or
 * already holds Ratchet rows (before touching it); applies the PostgreSQL migrations; then, in
 * ONE transaction: locks the Ratchet tables against every other session, checks they are still
 * empty, drops their secondary indexes, streams each table in batches (`INSERT … SELECT FROM
 * unnest($1::uuid[], …)`, at most two batches in memory), builds the indexes again from their
 * own definitions, counts every table against SQLite's counts, restarts the `seq` identities
 * past the highest copied seq, and commits. History rows take the copying transaction's `xid`.
 * Afterwards it runs `ANALYZE` on the tables (best effort). Run it as the role that owns the
 * tables (indexes and identities are altered).
 *
 * Failure semantics: nothing is committed to PostgreSQL unless every row was copied and every
 * count matched; a refused or failed copy leaves it as it was, except that the migrations may
 * have been applied to a database that was empty (the same as `ratchet migrate`). The SQLite
 * file is never written (its `-wal`/`-shm` side files may be created by the read-only open).
 * Throws `DatabaseInUseError` while a server (or another copy) holds the SQLite file;
 * {@link CopyRefusedError} with its reason for a missing or foreign SQLite file, a schema
 * version mismatch, a non-UTF-8 or non-empty target, a busy target, a value PostgreSQL cannot
 * store, or a count that differs; `StorageUnavailableError` when PostgreSQL cannot be reached
 * or the connection is lost (if lost during COMMIT, its message says the copy may have been
 * committed: running the copy again then refuses a filled target); any other PostgreSQL error
 * (authentication, a database that does not exist) as the driver threw it.
 */
export async function copySqliteToPostgres(options: CopySqliteToPostgresOptions): Promise<CopyReport> {
  const started = performance.now()
  const tables = copiedTables()
  const filename = resolve(options.sqliteFilename)
  if (!existsSync(filename)) throw new CopyRefusedError('sqlite-missing', `no SQLite database at ${filename}`)
  if (!statSync(filename).isFile())
    throw new CopyRefusedError('sqlite-missing', `${filename} is not a file (a SQLite database is one file)`)
  const lock = acquireProcessLock(filename)
  try {
    const source = openSource(filename, tables, options.sqliteMigrationsFolder ?? SQLITE_MIGRATIONS_FOLDER)
    try {
      // One read transaction: counts and rows come from the same snapshot.
      source.exec('BEGIN')
      const snapshot = readSnapshot(source, tables)
      await copyInto(source, snapshot, tables, options)
      return { ...snapshot.report, ms: Math.round(performance.now() - started) }
    } finally {
      source.close()
    }
  } finally {
    lock.release()
  }
}

/** What SQLite holds, counted in the copy's snapshot. */
interface Snapshot {
  rows: Map<CopiedTableName, number>
  /** The highest value of each table's identity column (absent: no rows). */
  maxIdentity: Map<CopiedTableName, bigint>
  report: Omit<CopyReport, 'ms'>
}

const quote = (name: string) => pg.escapeIdentifier(name)

function openSource(
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

function readSnapshot(db: Database.Database, tables: readonly CopiedTable[]): Snapshot {
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

/** The target as messages name it: its database name, never the URL (it may hold a password). */
function targetName(url: string): string {
  try {
    const parsed = new URL(url)
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
    return `PostgreSQL database "${database}" on ${parsed.host}`
  } catch {
    return 'the PostgreSQL database'
  }
}

/** The phases of the PostgreSQL side, for what an outage in each means. */
type Phase = 'before' | 'copy' | 'commit' | 'after'

async function copyInto(
  source: Database.Database,
  snapshot: Snapshot,
  tables: readonly CopiedTable[],
  options: CopySqliteToPostgresOptions,
): Promise<void> {
  const target = targetName(options.postgresUrl)
  const pool = createPool({
    url: options.postgresUrl,
    poolSize: 1,
    applicationName: 'ratchet copy-sqlite',
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
  })
  let phase: Phase = 'before'
  try {
    await checkTarget(pool, target, tables)
    await migratePostgres(pool, options.postgresMigrationsFolder ?? POSTGRES_MIGRATIONS_FOLDER)
    const client = await pool.connect()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      phase = 'copy'
      try {
        await client.query(
          `SET LOCAL lock_timeout = ${Math.max(1, Math.floor(options.lockTimeoutMs ?? 10_000))}; ` +
            "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0; SET LOCAL synchronous_commit = 'on'",
        )
        await lockTables(client, target, tables, options.lockTimeoutMs ?? 10_000)
        const found = await rowsFound((text) => client.query(text), tables)
        if (found.length > 0) throw notEmpty(target, found)
        const indexes = await dropSecondaryIndexes(client, tables)
        for (const table of tables)
          await copyTable(source, client, table, snapshot.rows.get(table.name)!, options)
        options.onStage?.('indexing')
        for (const definition of indexes) await client.query(definition)
        options.onStage?.('verifying')
        await verifyCounts(client, tables, snapshot)
        for (const table of tables) {
          const max = snapshot.maxIdentity.get(table.name)
          if (table.identity && max !== undefined)
            await client.query(
              `ALTER TABLE ${quote(table.name)} ALTER COLUMN ${quote(table.identity)} RESTART WITH ${(max + 1n).toString()}`,
            )
        }
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      }
      phase = 'commit'
      options.onStage?.('committing')
      await client.query('COMMIT')
      phase = 'after'
      options.onStage?.('analyzing')
      // Fresh statistics, so the first claims plan on the copied rows (best effort: done is done).
      await client.query(`ANALYZE ${tables.map((t) => quote(t.name)).join(', ')}`).catch(() => {})
    } catch (error) {
      if (isUnavailable(error)) broken = error as Error
      throw error
    } finally {
      client.release(broken)
    }
  } catch (error) {
    if (isUnavailable(error) && phase !== 'after') throw unavailable(target, phase, error)
    throw error
  } finally {
    await pool.end().catch(() => {})
  }
}

function unavailable(target: string, phase: Phase, cause: unknown): StorageUnavailableError {
  const why = (cause as Error).message || (cause as { code?: string }).code || 'connection failed'
  const message =
    phase === 'commit'
      ? `the connection to ${target} was lost during COMMIT (${why}): the copy may or may not have been committed; ` +
        'run the same command again: it copies into an empty database and refuses a filled one'
      : `cannot reach ${target} (${why}); nothing was copied`
  return new StorageUnavailableError(message, { cause })
}

/** Refuses, before migrating anything, a database that is not UTF-8 or already holds Ratchet rows. */
async function checkTarget(pool: pg.Pool, target: string, tables: readonly CopiedTable[]): Promise<void> {
  const encoding = (await pool.query<{ server_encoding: string }>('SHOW server_encoding')).rows[0]!
    .server_encoding
  if (encoding !== 'UTF8')
    throw new CopyRefusedError(
      'target-encoding',
      `${target} stores text as ${encoding}, not UTF8: Ratchet's text would not survive; create the database with ENCODING 'UTF8'`,
    )
  const found = await rowsFound((text) => pool.query(text), tables)
  if (found.length > 0) throw notEmpty(target, found)
}

interface Found {
  table: string
  rows: number
}

/** How many rows (up to 1,001) each existing Ratchet table holds, for the non-empty ones. */
async function rowsFound(
  query: (text: string) => Promise<pg.QueryResult>,
  tables: readonly CopiedTable[],
): Promise<Found[]> {
  const names = tables.map((t) => `(${pg.escapeLiteral(t.name)})`).join(', ')
  const existing = (
    await query(
      `SELECT name FROM (VALUES ${names}) AS t(name) WHERE to_regclass(quote_ident(name)) IS NOT NULL`,
    )
  ).rows.map((row) => (row as { name: string }).name)
  if (existing.length === 0) return []
  const counts = existing
    .map(
      (name) =>
        `SELECT ${pg.escapeLiteral(name)} AS name, (SELECT count(*) FROM (SELECT 1 FROM ${quote(name)} LIMIT 1001) s) AS n`,
    )
    .join(' UNION ALL ')
  return (await query(counts)).rows
    .map((row) => ({ table: (row as { name: string }).name, rows: Number((row as { n: number }).n) }))
    .filter((row) => row.rows > 0)
}

function notEmpty(target: string, found: readonly Found[]): CopyRefusedError {
  const what = found.map(
    (f) => `${f.table} (${f.rows > 1000 ? 'over 1,000' : f.rows.toLocaleString('en-US')} rows)`,
  )
  return new CopyRefusedError(
    'target-not-empty',
    `${target} is not empty: it holds ${what.join(', ')}. copy-sqlite fills an empty database only; ` +
      'give it a new database (CREATE DATABASE …), or empty this one if its rows are not needed',
  )
}

/**
 * Drops the tables' indexes that back no constraint (all but the primary keys) and returns
 * their definitions (`pg_get_indexdef`), to be run again once the rows are in, in the same
 * transaction: one sorted build per index instead of an index insertion per row (the
 * executions table, with thirteen, loaded in a third less time). A unique index the rows
 * violate fails its build, and the copy rolls back.
 */
async function dropSecondaryIndexes(
  client: pg.PoolClient,
  tables: readonly CopiedTable[],
): Promise<string[]> {
  const { rows } = await client.query<{ name: string; definition: string }>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
       FROM pg_index i
      WHERE i.indrelid = ANY($1::regclass[])
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
      ORDER BY 1`,
    [tables.map((t) => quote(t.name))],
  )
  for (const index of rows) await client.query(`DROP INDEX ${index.name}`)
  return rows.map((index) => index.definition)
}

/**
 * Keeps every other session off the tables until the copy commits (a server started on the
 * database meanwhile waits, then sees every row at once); waits at most `lock_timeout`.
 */
async function lockTables(
  client: pg.PoolClient,
  target: string,
  tables: readonly CopiedTable[],
  lockTimeoutMs: number,
): Promise<void> {
  try {
    await client.query(`LOCK TABLE ${tables.map((t) => quote(t.name)).join(', ')} IN ACCESS EXCLUSIVE MODE`)
  } catch (error) {
    if ((error as { code?: string }).code !== '55P03') throw error
    throw new CopyRefusedError(
      'target-busy',
      `another session kept the Ratchet tables of ${target} locked for ${lockTimeoutMs} ms: is a server using it? ` +
        'Stop it, then copy',
    )
  }
}

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const INTEGER_RANGE = { 16: 2n ** 15n, 32: 2n ** 31n, 64: 2n ** 63n } as const

/** One batch of rows, column by column (the arrays `unnest` takes). */
interface Batch {
  columns: unknown[][]
  rows: number
  chars: number
  /** Index (in the table's SQLite order) of the batch's first row. */
  first: number
}

async function copyTable(
  source: Database.Database,
  client: pg.PoolClient,
  table: CopiedTable,
  total: number,
  options: CopySqliteToPostgresOptions,
): Promise<void> {
  const batchRows = options.batchRows ?? 5000
  const batchChars = options.batchChars ?? 8 * 1024 * 1024
  const names = table.columns.map((c) => quote(c.name)).join(', ')
  // No ORDER BY: a scan in storage order reads the file front to back.
  const select = source
    .prepare(`SELECT ${names} FROM ${quote(table.name)}`)
    .raw(true)
    .safeIntegers(true)
  const insert = {
    name: `ratchet_copy_${table.name}`,
    text:
      `INSERT INTO ${quote(table.name)} (${names})${table.identity ? ' OVERRIDING SYSTEM VALUE' : ''} ` +
      `SELECT * FROM unnest(${table.columns.map((c, i) => `$${i + 1}::${c.arrayType}`).join(', ')})`,
  }
  const keyIndexes = table.key.map((key) => table.columns.findIndex((c) => c.name === key))
  const newBatch = (first: number): Batch => ({
    columns: table.columns.map(() => []),
    rows: 0,
    chars: 0,
    first,
  })

  let copied = 0
  let failure: Error | undefined
  // The batch in flight: the next one is read from SQLite while PostgreSQL inserts it.
  let inFlight: Promise<void> = Promise.resolve()
  const send = (batch: Batch): Promise<void> =>
    client.query({ ...insert, values: batch.columns }).then(
      () => {
        copied += batch.rows
        options.onProgress?.({ table: table.name, copied, total })
      },
      (error: unknown) => {
        failure ??= describeInsertFailure(error, table, batch)
      },
    )

  const rethrow = (): void => {
    if (failure !== undefined) throw failure
  }

  let batch = newBatch(0)
  let index = 0
  for (const row of select.iterate() as IterableIterator<unknown[]>) {
    for (let i = 0; i < table.columns.length; i++) {
      const value = row[i]
      batch.columns[i]!.push(value === null ? null : checkedValue(table, i, value, row, keyIndexes))
      if (typeof value === 'string') batch.chars += value.length
    }
    batch.rows++
    index++
    if (batch.rows >= batchRows || batch.chars >= batchChars) {
      await inFlight
      rethrow()
      inFlight = send(batch)
      batch = newBatch(index)
    }
  }
  await inFlight
  rethrow()
  if (batch.rows > 0) await send(batch)
  rethrow()
  if (copied !== total)
    throw new CopyRefusedError(
      'count-mismatch',
      `${table.name}: ${copied.toLocaleString('en-US')} rows copied, but SQLite counted ${total.toLocaleString('en-US')}; nothing was committed`,
    )
}

/** A SQLite value as PostgreSQL's column takes it; a value it could not store as it is throws. */
function checkedValue(
  table: CopiedTable,
  index: number,
  value: unknown,
  row: readonly unknown[],
  keyIndexes: readonly number[],
): unknown {
  const column = table.columns[index]!
  const kind = column.kind
  let problem: string | undefined
  if (kind.type === 'integer') {
    if (typeof value !== 'bigint') problem = `an integer was expected, SQLite holds ${describeValue(value)}`
    else if (value < -INTEGER_RANGE[kind.bits] || value >= INTEGER_RANGE[kind.bits])
      problem = `${value} does not fit PostgreSQL's ${kind.bits}-bit integer column`
    else return value
  } else if (typeof value !== 'string') {
    problem = `text was expected, SQLite holds ${describeValue(value)}`
  } else if (kind.type === 'uuid') {
    if (CANONICAL_UUID.test(value)) return value
    problem = `"${value.slice(0, 60)}" is not a lower-case UUID, as PostgreSQL's uuid column stores it`
  } else if (value.includes('\0')) {
    problem = 'it contains a NUL character, which PostgreSQL text cannot hold'
  } else {
    return value
  }
  const key = keyIndexes.map((i) => `${table.columns[i]!.name}=${String(row[i])}`).join(', ')
  throw new CopyRefusedError(
    'row-not-copyable',
    `${table.name} (${key}): ${column.name}: ${problem}; nothing was committed`,
  )
}

function describeValue(value: unknown): string {
  if (Buffer.isBuffer(value)) return `a BLOB of ${value.length} bytes`
  if (typeof value === 'number') return `the real number ${value}`
  if (typeof value === 'bigint') return `the integer ${value}`
  return `the text "${String(value).slice(0, 60)}"`
}

function describeInsertFailure(error: unknown, table: CopiedTable, batch: Batch): Error {
  if (isUnavailable(error)) return error as Error
  const e = error as { message?: string; detail?: string }
  const rows = `${(batch.first + 1).toLocaleString('en-US')}–${(batch.first + batch.rows).toLocaleString('en-US')}`
  return new Error(
    `copying ${table.name} (rows ${rows} in SQLite's storage order): ${e.message ?? String(error)}${e.detail ? ` (${e.detail})` : ''}; nothing was committed`,
    { cause: error },
  )
}

async function verifyCounts(
  client: pg.PoolClient,
  tables: readonly CopiedTable[],
  snapshot: Snapshot,
): Promise<void> {
  const counts = (
    await client.query<{ name: CopiedTableName; n: number }>(
      tables
        .map(
          (t) => `SELECT ${pg.escapeLiteral(t.name)} AS name, (SELECT count(*) FROM ${quote(t.name)}) AS n`,
        )
        .join(' UNION ALL '),
    )
  ).rows
  const wrong = counts.filter((row) => Number(row.n) !== snapshot.rows.get(row.name))
  if (wrong.length > 0)
    throw new CopyRefusedError(
      'count-mismatch',
      `the copy's counts differ, so it was rolled back: ${wrong
        .map((row) => `${row.name} ${Number(row.n)} in PostgreSQL, ${snapshot.rows.get(row.name)} in SQLite`)
        .join('; ')}`,
    )
}
