import pg from 'pg'
import { quote } from './quote'
import { CopyRefusedError } from './refused'
import type { Snapshot } from './source'
import type { CopiedTable, CopiedTableName } from './tables'

/**
 * The PostgreSQL side of the copy around the rows: the target checked empty and locked, its
 * secondary indexes dropped for the load, and the copied rows counted.
 */

/** The target as messages name it: its database name, never the URL (it may hold a password). */
export function targetName(url: string): string {
  try {
    const parsed = new URL(url)
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
    return `PostgreSQL database "${database}" on ${parsed.host}`
  } catch {
    return 'the PostgreSQL database'
  }
}

/** Refuses, before migrating anything, a database that is not UTF-8 or already holds Ratchet rows. */
export async function checkTarget(
  pool: pg.Pool,
  target: string,
  tables: readonly CopiedTable[],
): Promise<void> {
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
export async function rowsFound(
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

export function notEmpty(target: string, found: readonly Found[]): CopyRefusedError {
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
export async function dropSecondaryIndexes(
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
export async function lockTables(
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

export async function verifyCounts(
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
