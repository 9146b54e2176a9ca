import { sql } from 'drizzle-orm'
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import { EXECUTION_STATUSES } from '@ratchet/core'

/**
 * SQLite schema. Times are integer epoch milliseconds passed in by the engine's clock;
 * payloads and errors are JSON text written once by the engine.
 */
export const executions = sqliteTable(
  'executions',
  {
    id: text('id').primaryKey(),
    taskId: text('task_id').notNull(),
    status: text('status', { enum: EXECUTION_STATUSES }).notNull(),
    input: text('input').notNull(),
    output: text('output'),
    error: text('error'),
    attempt: integer('attempt').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    timeoutMs: integer('timeout_ms').notNull(),
    backoff: text('backoff').notNull(),
    priority: integer('priority').notNull().default(0),
    idempotencyKey: text('idempotency_key'),
    runAt: integer('run_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: integer('lease_expires_at'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    // Partial: executions without a key (most) never touch it.
    uniqueIndex('executions_idempotency_key_uq')
      .on(t.taskId, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
    // The claim reads this in order (status = 'queued', highest priority, oldest run_at, id)
    // with no sort. A partial index would be smaller, but SQLite's planner prefers
    // executions_status_idx over it and sorts; EXPLAIN QUERY PLAN is checked in a test.
    index('executions_claim_idx').on(t.status, sql`${t.priority} desc`, t.runAt, t.id),
    // The next-due timer reads the smallest queued run_at. Partial: terminal rows never touch it.
    index('executions_due_idx')
      .on(t.runAt)
      .where(sql`${t.status} = 'queued'`),
    // Lease recovery needs no index of its own: running rows are few and executions_status_idx finds them.
    index('executions_task_idx').on(t.taskId, t.id),
    index('executions_status_idx').on(t.status, t.id),
  ],
)

/** Every status transition, appended in the same transaction as the change it records. */
export const executionHistory = sqliteTable(
  'execution_history',
  {
    // The rowid: increasing, without AUTOINCREMENT's extra write per insert.
    seq: integer('seq').primaryKey(),
    executionId: text('execution_id')
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    at: integer('at').notNull(),
    fromStatus: text('from_status', { enum: EXECUTION_STATUSES }),
    toStatus: text('to_status', { enum: EXECUTION_STATUSES }).notNull(),
    attempt: integer('attempt').notNull(),
    detail: text('detail'),
  },
  (t) => [index('execution_history_execution_idx').on(t.executionId, t.seq)],
)
