import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import type Database from 'better-sqlite3'
import { StorageUnavailableError } from '@ratchet/core'
import { POSTGRES_MIGRATIONS_FOLDER, SQLITE_MIGRATIONS_FOLDER } from '../migrations-folder'
import { createPool } from '../postgres/database'
import { isUnavailable } from '../postgres/errors'
import { migratePostgres } from '../postgres/migrate'
import { acquireProcessLock } from '../sqlite/process-lock'
import { copyTable } from './copy-table'
import type { CopyReport, CopySqliteToPostgresOptions } from './options'
import { quote } from './quote'
import { CopyRefusedError } from './refused'
import { openSource, readSnapshot, type Snapshot } from './source'
import { copiedTables, type CopiedTable } from './tables'
import {
  checkTarget,
  dropSecondaryIndexes,
  lockTables,
  notEmpty,
  rowsFound,
  targetName,
  verifyCounts,
} from './target'

export type { CopySqliteToPostgresOptions, CopyProgress, CopyReport, CopyStage } from './options'
export { CopyRefusedError, type CopyRefusal } from './refused'

/**
 * `ratchet copy-sqlite`: a stopped server's SQLite database copied into an empty PostgreSQL
 * database, every row and column as it is, in one PostgreSQL transaction.
 */

/**
 * Copies the SQLite database of a stopped server into an empty PostgreSQL database: every row
 * of executions, execution_history, execution_steps, execution_signals, events and task_queues (idempotency
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
