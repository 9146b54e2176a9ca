import type Database from 'better-sqlite3'
import type pg from 'pg'
import { isUnavailable } from '../postgres/errors'
import type { CopySqliteToPostgresOptions } from './options'
import { quote } from './quote'
import { CopyRefusedError } from './refused'
import type { CopiedTable } from './tables'

/**
 * One table's rows streamed from SQLite into PostgreSQL in batches, each value checked to be
 * one PostgreSQL stores as it is.
 */

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

export async function copyTable(
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
