import { getTableColumns, getTableName } from 'drizzle-orm'
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import * as postgresSchema from '../postgres/schema'
import * as sqliteSchema from '../sqlite/schema'

/**
 * What the SQLite → PostgreSQL copy knows of each table, read from the two drizzle schemas
 * (so a column added to one dialect and not the other fails the copy's own test, never a
 * user's copy halfway).
 */

/** How a column's values travel: as text, as a canonical UUID, or as an integer of `bits`. */
export type ColumnKind = { type: 'text' } | { type: 'uuid' } | { type: 'integer'; bits: 16 | 32 | 64 }

export interface CopiedColumn {
  /** The SQL name, the same in both databases. */
  readonly name: string
  readonly kind: ColumnKind
  /** The PostgreSQL array type a batch of this column's values is sent as (`unnest($n::uuid[])`). */
  readonly arrayType: string
}

export interface CopiedTable {
  /** The table's name, the same in both databases. */
  readonly name: CopiedTableName
  /** Every column both databases have, in the PostgreSQL schema's order. */
  readonly columns: readonly CopiedColumn[]
  /** The primary key's columns: they name a row in error messages. */
  readonly key: readonly string[]
  /** The identity column (`seq`), restarted past the highest copied value; absent if none. */
  readonly identity?: string
}

export type CopiedTableName =
  'executions' | 'execution_history' | 'execution_steps' | 'execution_signals' | 'events' | 'task_queues'

/**
 * PostgreSQL-only columns, filled by their defaults: history's `xid` (the id of the copying
 * transaction, so the copied rows sort before every later change in the (xid, seq) change feed).
 */
const POSTGRES_ONLY: Readonly<Record<string, readonly string[]>> = { execution_history: ['xid'] }

/** The tables in the order they are copied (no foreign keys: any order would do). */
const PAIRS: readonly [SQLiteTable, PgTable][] = [
  [sqliteSchema.executions, postgresSchema.executions],
  [sqliteSchema.executionHistory, postgresSchema.executionHistory],
  [sqliteSchema.executionSteps, postgresSchema.executionSteps],
  [sqliteSchema.executionSignals, postgresSchema.executionSignals],
  [sqliteSchema.events, postgresSchema.events],
  // Paused queues stay paused after the move.
  [sqliteSchema.taskQueues, postgresSchema.taskQueues],
]

function kindOf(table: string, column: string, sqlType: string): { kind: ColumnKind; arrayType: string } {
  if (sqlType === 'uuid') return { kind: { type: 'uuid' }, arrayType: 'uuid[]' }
  if (sqlType === 'text' || sqlType.startsWith('text '))
    return { kind: { type: 'text' }, arrayType: 'text[]' }
  if (sqlType === 'smallint') return { kind: { type: 'integer', bits: 16 }, arrayType: 'int2[]' }
  if (sqlType === 'integer') return { kind: { type: 'integer', bits: 32 }, arrayType: 'int4[]' }
  if (sqlType === 'bigint') return { kind: { type: 'integer', bits: 64 }, arrayType: 'int8[]' }
  throw new Error(`copy: no conversion for ${table}.${column} (PostgreSQL type ${sqlType})`)
}

/**
 * The copied tables, checked against both schemas: throws (a bug, caught by the copy's test)
 * when a table's columns differ between the dialects beyond {@link POSTGRES_ONLY}.
 */
export function copiedTables(): CopiedTable[] {
  return PAIRS.map(([sqliteTable, postgresTable]) => {
    const name = getTableName(postgresTable) as CopiedTableName
    if (getTableName(sqliteTable) !== name)
      throw new Error(`copy: table ${getTableName(sqliteTable)} is paired with ${name}`)
    const skipped = POSTGRES_ONLY[name] ?? []
    const sqliteColumns = Object.values(getTableColumns(sqliteTable)).map((c) => c.name)
    const postgresColumns = Object.values(getTableColumns(postgresTable)).filter(
      (c) => !skipped.includes(c.name),
    )
    const missing = postgresColumns.filter((c) => !sqliteColumns.includes(c.name)).map((c) => c.name)
    const extra = sqliteColumns.filter((c) => !postgresColumns.some((p) => p.name === c))
    if (missing.length > 0 || extra.length > 0)
      throw new Error(
        `copy: ${name} differs between the dialects (only in PostgreSQL: ${missing.join(', ') || '-'}; only in SQLite: ${extra.join(', ') || '-'})`,
      )
    const columns = postgresColumns.map((c) => ({ name: c.name, ...kindOf(name, c.name, c.getSQLType()) }))
    const composite = getTableConfig(postgresTable).primaryKeys[0]?.columns.map((c) => c.name)
    const key = composite ?? postgresColumns.filter((c) => c.primary).map((c) => c.name)
    const identity = postgresColumns.find(
      (c) => (c as { generatedIdentity?: unknown }).generatedIdentity !== undefined,
    )?.name
    return {
      name,
      columns,
      key,
      ...(identity === undefined ? {} : { identity }),
    }
  })
}
