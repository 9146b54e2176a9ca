import { sql } from 'drizzle-orm'
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import { EXECUTION_STATUSES, STEP_KINDS, STEP_STATUSES } from '@ratchet/core'

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
    // Runs so far (claims: resumes after waits and crash recoveries included), the fence of
    // every write a run makes. The SQL column keeps its first name, `attempt`; everywhere
    // above SQL it is `runs` (ExecutionRow.runs), and "attempt" means failures + 1.
    runs: integer('attempt').notNull().default(0),
    // Failed attempts so far (errors, timeouts, deadlines, an exhausted recovery budget): what
    // maxAttempts bounds. Runs lost to a crash and recovered are not failures.
    failures: integer('failures').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    // Recoveries in a row since the execution last made progress: what max_recoveries bounds.
    recoveries: integer('recoveries').notNull().default(0),
    // Snapshotted at enqueue like max_attempts; rows from before it get the default, 5.
    maxRecoveries: integer('max_recoveries').notNull().default(5),
    // When the latest run was claimed: recovery compares the step records' times with it to
    // tell a lost run that recorded progress from one that did not (no write on the step path).
    claimedAt: integer('claimed_at'),
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
    parentId: text('parent_id'),
    // The top of the tree, for children; NULL for a top-level execution (its own root), so
    // top-level inserts never touch executions_root_idx.
    rootId: text('root_id'),
    // 1 when the parent awaits this child (ctx.child), 0 for ctx.spawn and top-level executions.
    wakesParent: integer('wakes_parent').notNull().default(0),
    // Past this the execution ends timed_out, whatever it is doing.
    deadlineAt: integer('deadline_at'),
    // Something woke the execution while it ran (a signal, a child's end): its next park requeues it.
    wakePending: integer('wake_pending').notNull().default(0),
    // Runs of the execution's body from a fresh record: 0, then +1 per ctx.continueAsNew.
    generation: integer('generation').notNull().default(0),
    // A debounced task's key (TaskDefinition.debounce): set at enqueue, NULL for other tasks.
    debounceKey: text('debounce_key'),
  },
  (t) => [
    // The one execution of a debounce key that has not started yet: an enqueue with that key
    // updates it (ON CONFLICT on this index) instead of inserting. Partial: every other row,
    // and a debounced one once claimed, are outside it.
    uniqueIndex('executions_debounce_uq')
      .on(t.taskId, t.debounceKey)
      .where(sql`${t.debounceKey} IS NOT NULL AND ${t.status} = 'queued' AND ${t.runs} = 0`),
    // Partial: executions without a key (most) never touch it.
    uniqueIndex('executions_idempotency_key_uq')
      .on(t.taskId, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
    // The claim reads each task's due executions in order (status = 'queued', task, highest
    // priority, oldest run_at, id) with no sort: one index seek per task, for fair claiming.
    index('executions_claim_idx').on(t.status, t.taskId, sql`${t.priority} desc`, t.runAt, t.id),
    // The next-due timer reads the smallest queued run_at. Partial: terminal rows never touch it.
    index('executions_due_idx')
      .on(t.runAt)
      .where(sql`${t.status} = 'queued'`),
    // Lease recovery needs no index of its own: running rows are few and executions_status_idx finds them.
    // Sleeping and timing-out waiters come back by run_at.
    index('executions_waiting_due_idx')
      .on(t.runAt)
      .where(sql`${t.status} = 'waiting'`),
    index('executions_deadline_idx')
      .on(t.deadlineAt)
      .where(sql`${t.deadlineAt} IS NOT NULL AND ${t.status} IN ('queued', 'waiting')`),
    index('executions_parent_idx')
      .on(t.parentId, t.id)
      .where(sql`${t.parentId} IS NOT NULL`),
    index('executions_root_idx')
      .on(t.rootId, t.id)
      .where(sql`${t.rootId} IS NOT NULL`),
    index('executions_task_idx').on(t.taskId, t.id),
    // Throughput (stats.throughput) reads ended executions by finished_at and first starts by
    // started_at, over a time range. Partial: a row enters each once (at its end, at its first
    // claim), never while queued.
    index('executions_finished_idx')
      .on(t.finishedAt, t.status, t.taskId)
      .where(sql`${t.finishedAt} IS NOT NULL`),
    index('executions_started_idx')
      .on(t.startedAt, t.taskId)
      .where(sql`${t.startedAt} IS NOT NULL`),
    // Retention (purge): each task's finished roots, oldest first. Partial: children and
    // unfinished executions never touch it (one entry per finished root, written when it ends).
    index('executions_retention_idx')
      .on(t.taskId, t.finishedAt)
      .where(sql`${t.parentId} IS NULL AND ${t.finishedAt} IS NOT NULL`),
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
    // The run it happened in (executions.attempt at the time; SQL keeps the first name).
    run: integer('attempt').notNull(),
    detail: text('detail'),
    // 'status' for a transition; 'step', 'wait', 'signal', 'child' for what happened inside one.
    event: text('event').notNull().default('status'),
    // The step, wait or signal name of a non-status event.
    name: text('name'),
  },
  (t) => [index('execution_history_execution_idx').on(t.executionId, t.seq)],
)

/**
 * The record of a durable function: one row per step or wait, at its position in the run.
 * Replays read it back; `status` 'waiting' marks a wait that is not yet satisfied.
 */
export const executionSteps = sqliteTable(
  'execution_steps',
  {
    executionId: text('execution_id')
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    position: integer('position').notNull(),
    name: text('name').notNull(),
    kind: text('kind', { enum: STEP_KINDS }).notNull(),
    status: text('status', { enum: STEP_STATUSES }).notNull(),
    value: text('value'),
    error: text('error'),
    // A sleep's wake time, or a wait's timeout.
    wakeAt: integer('wake_at'),
    childId: text('child_id'),
    signalName: text('signal_name'),
    wakeupKey: text('wakeup_key'),
    createdAt: integer('created_at').notNull(),
    completedAt: integer('completed_at'),
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
export const executionSignals = sqliteTable(
  'execution_signals',
  {
    seq: integer('seq').primaryKey(),
    executionId: text('execution_id')
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    payload: text('payload').notNull(),
    createdAt: integer('created_at').notNull(),
    // The wait (step name) that consumed it, and when.
    consumedBy: text('consumed_by'),
    consumedAt: integer('consumed_at'),
  },
  (t) => [index('execution_signals_execution_idx').on(t.executionId, t.seq)],
)

/** Published events (`events.publish`), with the executions each started. */
export const events = sqliteTable(
  'events',
  {
    // UUIDv7, so ids sort by time.
    id: text('id').primaryKey(),
    type: text('type').notNull(),
    payload: text('payload').notNull(),
    createdAt: integer('created_at').notNull(),
    // JSON array of execution ids.
    executionIds: text('execution_ids').notNull(),
    // The `id` given to publish: the same one again is the same event.
    publishId: text('publish_id'),
  },
  (t) => [
    index('events_type_idx').on(t.type, t.id),
    uniqueIndex('events_publish_id_uq')
      .on(t.publishId)
      .where(sql`${t.publishId} IS NOT NULL`),
  ],
)

/**
 * Per task, the state of its queue that operators set at run time: paused (`tasks.pause`)
 * since `paused_at`, or not (NULL). A task without a row is not paused. The claim and
 * `nextDueAt` skip a paused task's queued executions; enqueues still land.
 */
export const taskQueues = sqliteTable('task_queues', {
  taskId: text('task_id').primaryKey(),
  pausedAt: integer('paused_at'),
  updatedAt: integer('updated_at').notNull(),
})
