import { sql } from 'drizzle-orm'
import {
  bigint,
  customType,
  index,
  integer,
  pgTable,
  primaryKey,
  smallint,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { EXECUTION_STATUSES, STEP_KINDS, STEP_STATUSES } from '@ratchet/core'

/**
 * PostgreSQL schema: the same tables, columns and indexes as the SQLite schema, so the two
 * adapters read the same way and a SQLite database copies column for column. Times are epoch
 * milliseconds (`bigint`, read back as numbers); payloads and errors are JSON *text*, stored
 * and returned byte for byte (`jsonb` would reorder keys and drop duplicates).
 *
 * No foreign keys: every insert into history, steps or signals would lock its execution row
 * `FOR KEY SHARE` and check it, on the hottest path. The adapter writes dependents only for
 * executions it has just read or locked, and deletes them explicitly (purge).
 */

/** Epoch milliseconds: `bigint` in SQL, a JS number (safe far past year 200,000). */
const millis = (name: string) => bigint(name, { mode: 'number' })

/**
 * The 64-bit id of the transaction that wrote a history row (`pg_current_xact_id()`). The
 * change feed orders by (xid, seq) and reads only rows of transactions older than every one
 * still running, so a reader's cursor never passes a row that commits later.
 */
/**
 * Names compared and sorted by the adapter (task ids, step and signal names, keys): byte order
 * (`COLLATE "C"`), as in SQLite, whatever the database's locale.
 */
const cText = customType<{ data: string }>({ dataType: () => 'text COLLATE "C"' })

const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' })

export const executions = pgTable(
  'executions',
  {
    // UUIDv7: 16 bytes, byte-ordered, so ids sort by time.
    id: uuid('id').primaryKey(),
    taskId: cText('task_id').notNull(),
    status: text('status', { enum: EXECUTION_STATUSES }).notNull(),
    input: text('input').notNull(),
    output: text('output'),
    error: text('error'),
    // Runs so far: the fence of every write a run makes (named `attempt` as in SQLite).
    runs: integer('attempt').notNull().default(0),
    failures: integer('failures').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    recoveries: integer('recoveries').notNull().default(0),
    maxRecoveries: integer('max_recoveries').notNull().default(5),
    claimedAt: millis('claimed_at'),
    timeoutMs: integer('timeout_ms').notNull(),
    backoff: text('backoff').notNull(),
    priority: integer('priority').notNull().default(0),
    idempotencyKey: cText('idempotency_key'),
    runAt: millis('run_at').notNull(),
    leaseOwner: text('lease_owner'),
    // On the database's clock by default (see the adapter's `leaseClock`).
    leaseExpiresAt: millis('lease_expires_at'),
    createdAt: millis('created_at').notNull(),
    updatedAt: millis('updated_at').notNull(),
    startedAt: millis('started_at'),
    finishedAt: millis('finished_at'),
    parentId: uuid('parent_id'),
    rootId: uuid('root_id'),
    wakesParent: smallint('wakes_parent').notNull().default(0),
    deadlineAt: millis('deadline_at'),
    wakePending: smallint('wake_pending').notNull().default(0),
    generation: integer('generation').notNull().default(0),
    // A debounced task's key (TaskDefinition.debounce): set at enqueue, NULL for other tasks.
    debounceKey: cText('debounce_key'),
  },
  (t) => [
    // The one execution of a debounce key that has not started yet: an enqueue with that key
    // updates it (ON CONFLICT on this index) instead of inserting. Partial: every other row,
    // and a debounced one once claimed, are outside it.
    uniqueIndex('executions_debounce_uq')
      .on(t.taskId, t.debounceKey)
      .where(sql`${t.debounceKey} IS NOT NULL AND ${t.status} = 'queued' AND ${t.runs} = 0`),
    uniqueIndex('executions_idempotency_key_uq')
      .on(t.taskId, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
    // Partial on queued: the claim reads each task's due rows in claim order, and a row leaves
    // the index when claimed, so the index holds the queue only, not the history of the table.
    index('executions_claim_idx')
      .on(t.taskId, t.priority.desc(), t.runAt, t.id)
      .where(sql`${t.status} = 'queued'`),
    index('executions_due_idx')
      .on(t.runAt)
      .where(sql`${t.status} = 'queued'`),
    index('executions_waiting_due_idx')
      .on(t.runAt)
      .where(sql`${t.status} = 'waiting'`),
    index('executions_deadline_idx')
      .on(t.deadlineAt)
      .where(sql`${t.deadlineAt} IS NOT NULL AND ${t.status} IN ('queued', 'waiting')`),
    // Lease recovery reads running rows by expiry.
    index('executions_lease_idx')
      .on(t.leaseExpiresAt)
      .where(sql`${t.status} = 'running'`),
    index('executions_parent_idx')
      .on(t.parentId, t.id)
      .where(sql`${t.parentId} IS NOT NULL`),
    index('executions_root_idx')
      .on(t.rootId, t.id)
      .where(sql`${t.rootId} IS NOT NULL`),
    index('executions_task_idx').on(t.taskId, t.id),
    index('executions_finished_idx')
      .on(t.finishedAt, t.status, t.taskId)
      .where(sql`${t.finishedAt} IS NOT NULL`),
    index('executions_started_idx')
      .on(t.startedAt, t.taskId)
      .where(sql`${t.startedAt} IS NOT NULL`),
    index('executions_retention_idx')
      .on(t.taskId, t.finishedAt)
      .where(sql`${t.parentId} IS NULL AND ${t.finishedAt} IS NOT NULL`),
    index('executions_status_idx').on(t.status, t.id),
  ],
)

/** Every status transition and what happened inside a run, appended with the change itself. */
export const executionHistory = pgTable(
  'execution_history',
  {
    // Per execution, increasing in commit order: every transaction that appends an execution's
    // history holds that execution's row lock. Across executions it is not commit-ordered; the
    // change feed uses (xid, seq).
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    xid: xid8('xid')
      .notNull()
      .default(sql`pg_current_xact_id()`),
    executionId: uuid('execution_id').notNull(),
    at: millis('at').notNull(),
    fromStatus: text('from_status', { enum: EXECUTION_STATUSES }),
    toStatus: text('to_status', { enum: EXECUTION_STATUSES }).notNull(),
    run: integer('attempt').notNull(),
    detail: text('detail'),
    event: text('event').notNull().default('status'),
    name: text('name'),
  },
  (t) => [
    index('execution_history_execution_idx').on(t.executionId, t.seq),
    // The change feed: status transitions in (xid, seq) order.
    index('execution_history_changes_idx')
      .on(t.xid, t.seq)
      .where(sql`${t.event} = 'status'`),
  ],
)

/** The record of a durable function: one row per step or wait, at its position in the run. */
export const executionSteps = pgTable(
  'execution_steps',
  {
    executionId: uuid('execution_id').notNull(),
    position: integer('position').notNull(),
    name: cText('name').notNull(),
    kind: text('kind', { enum: STEP_KINDS }).notNull(),
    status: text('status', { enum: STEP_STATUSES }).notNull(),
    value: text('value'),
    error: text('error'),
    wakeAt: millis('wake_at'),
    childId: uuid('child_id'),
    signalName: text('signal_name'),
    wakeupKey: cText('wakeup_key'),
    createdAt: millis('created_at').notNull(),
    completedAt: millis('completed_at'),
  },
  (t) => [
    primaryKey({ columns: [t.executionId, t.position] }),
    uniqueIndex('execution_steps_name_uq').on(t.executionId, t.name),
    uniqueIndex('execution_steps_wakeup_key_uq')
      .on(t.wakeupKey)
      .where(sql`${t.wakeupKey} IS NOT NULL`),
  ],
)

/** Signals sent to an execution, kept until a wait consumes them (the inbox). */
export const executionSignals = pgTable(
  'execution_signals',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    executionId: uuid('execution_id').notNull(),
    name: text('name').notNull(),
    payload: text('payload').notNull(),
    createdAt: millis('created_at').notNull(),
    consumedBy: text('consumed_by'),
    consumedAt: millis('consumed_at'),
  },
  (t) => [index('execution_signals_execution_idx').on(t.executionId, t.seq)],
)

/** Published events (`events.publish`), with the executions each started. */
export const events = pgTable(
  'events',
  {
    id: uuid('id').primaryKey(),
    type: cText('type').notNull(),
    payload: text('payload').notNull(),
    createdAt: millis('created_at').notNull(),
    executionIds: text('execution_ids').notNull(),
    publishId: cText('publish_id'),
  },
  (t) => [
    index('events_type_idx').on(t.type, t.id),
    uniqueIndex('events_publish_id_uq')
      .on(t.publishId)
      .where(sql`${t.publishId} IS NOT NULL`),
    // Retention deletes events by age.
    index('events_created_idx').on(t.createdAt),
  ],
)

/** Per task, the state of its queue set at run time (see sqlite/schema.ts). */
export const taskQueues = pgTable('task_queues', {
  taskId: cText('task_id').primaryKey(),
  pausedAt: millis('paused_at'),
  updatedAt: millis('updated_at').notNull(),
})
