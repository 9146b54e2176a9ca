/**
 * Schemas of the read side added for dashboards and command lines: execution summaries,
 * paginated history and steps, task statistics, throughput, the change stream, and the bulk
 * cancel and retry calls.
 */
import { z } from 'zod'
import {
  executionIdSchema,
  executionSchema,
  executionStatusSchema,
  historyEventSchema,
  storedErrorSchema,
} from './schemas'

/** A query-string boolean (`?statusOnly=true`) or a JSON one (RPC). */
const queryBoolean = z.union([z.boolean(), z.stringbool()])

/** An execution's error reduced to what a list shows: no stack, cause or data. */
export const errorSummarySchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
})
export type ErrorSummary = z.infer<typeof errorSummarySchema>

/**
 * An execution in a list: every field of `executionSchema` but its payloads (`input`,
 * `output`), and its error reduced to name, message and code. `executions.get` has the rest.
 */
export const executionSummarySchema = executionSchema
  .omit({ input: true, output: true, error: true })
  .extend({
    error: errorSummarySchema
      .nullable()
      .describe('The final error, or the last failed attempt’s while retrying (name, message, code)'),
  })
export type ExecutionSummary = z.infer<typeof executionSummarySchema>

export const historyInputSchema = z.object({
  id: executionIdSchema,
  cursor: z.string().optional().describe('nextCursor of the previous page (a history seq)'),
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('Default 100'),
  statusOnly: queryBoolean.optional().describe('Only status transitions, not steps and waits'),
})
export type HistoryInput = z.input<typeof historyInputSchema>

export const historyOutputSchema = z.object({
  items: z.array(historyEventSchema),
  nextCursor: z.string().nullable().describe('Pass it as cursor for the next page; null at the end so far'),
})
export type HistoryPage = z.infer<typeof historyOutputSchema>

/** Mirrors `STEP_KINDS` in @ratchet/core. */
export const stepKindSchema = z.enum(['step', 'sleep', 'signal', 'child', 'spawn', 'wakeup'])
/** Mirrors `STEP_STATUSES` in @ratchet/core. */
export const stepStatusSchema = z.enum(['done', 'failed', 'waiting'])

/** One entry of an execution's durable record: a step, sleep, wait, child or spawn. */
export const stepSchema = z.object({
  position: z.number().int().describe('Its place in the run, from 0'),
  name: z.string(),
  kind: stepKindSchema,
  status: stepStatusSchema.describe('waiting: a wait not yet satisfied'),
  value: z.unknown().describe('The step’s value, the signal’s payload, the child’s output (null if none)'),
  error: storedErrorSchema.nullable(),
  wakeAt: z.date().nullable().describe('A sleep’s wake time, or a wait’s timeout'),
  childId: z.string().nullable(),
  signalName: z.string().nullable(),
  wakeupKey: z.string().nullable(),
  createdAt: z.date(),
  completedAt: z.date().nullable(),
})
export type Step = z.infer<typeof stepSchema>

export const stepsInputSchema = z.object({
  id: executionIdSchema,
  cursor: z.string().optional().describe('nextCursor of the previous page (a position)'),
  limit: z.coerce.number().int().min(1).max(500).optional().describe('Default 100'),
})
export type StepsInput = z.input<typeof stepsInputSchema>

export const stepsOutputSchema = z.object({
  items: z.array(stepSchema),
  nextCursor: z.string().nullable(),
})
export type StepsPage = z.infer<typeof stepsOutputSchema>

export const statusCountsSchema = z.object({
  queued: z.number().int(),
  running: z.number().int(),
  waiting: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
  timed_out: z.number().int(),
})

export const taskStatsSchema = z.object({
  taskId: z.string(),
  counts: statusCountsSchema.describe('Executions of the task by status'),
  queueDepth: z.number().int().describe('Queued executions due now'),
  oldestQueuedAt: z
    .date()
    .nullable()
    .describe('The earliest due time (runAt) of a queued execution due now: how long the queue has waited'),
  pausedAt: z
    .date()
    .nullable()
    .describe('Since when its queue is paused (tasks.pause): nothing of it starts; null when it runs'),
})
export type TaskStats = z.infer<typeof taskStatsSchema>

export const taskStatsOutputSchema = z.object({ tasks: z.array(taskStatsSchema) })

export const throughputInputSchema = z.object({
  taskId: z.string().min(1).optional(),
  from: z.coerce.date().describe('Start of the window (inclusive)'),
  to: z.coerce.date().describe('End of the window (exclusive); after from'),
  buckets: z.coerce.number().int().min(1).max(500).optional().describe('Default 60'),
})
export type ThroughputInput = z.input<typeof throughputInputSchema>

export const throughputBucketSchema = z.object({
  at: z.date().describe('Start of the bucket'),
  completed: z.number().int(),
  failed: z.number().int(),
  timed_out: z.number().int(),
  cancelled: z.number().int(),
  started: z.number().int().describe('Executions whose first run started in the bucket'),
})
export type ThroughputBucket = z.infer<typeof throughputBucketSchema>

export const throughputOutputSchema = z.object({
  bucketMs: z.number().int(),
  items: z.array(throughputBucketSchema),
})
export type Throughput = z.infer<typeof throughputOutputSchema>

export const changesInputSchema = z.object({
  taskId: z.string().min(1).optional().describe('Only executions of this task'),
  rootId: z.string().min(1).optional().describe('Only this execution and everything below it'),
})
export type ChangesInput = z.input<typeof changesInputSchema>

/**
 * One status change of any execution. `cursor` is the SSE event id: opaque (compare for equality
 * only), send it back as Last-Event-ID to resume after this change. `seq` orders the changes of
 * one execution (its history seq), not those of different executions. No payloads.
 */
export const changeEventSchema = z.object({
  cursor: z
    .string()
    .describe('Opaque position in the change feed (the SSE event id); resume with Last-Event-ID: <cursor>'),
  seq: z.number().int().describe('Its history seq: orders the changes of one execution'),
  executionId: z.string(),
  taskId: z.string(),
  rootId: z.string().describe('The top of its tree (its own id at the top)'),
  parentId: z.string().nullable(),
  from: executionStatusSchema.nullable(),
  to: executionStatusSchema,
  run: z.number().int(),
  at: z.date(),
})
export type ChangeEvent = z.infer<typeof changeEventSchema>

export const bulkInputSchema = z.object({
  ids: z.array(executionIdSchema).min(1).max(100).describe('1 to 100 execution ids, each handled on its own'),
})

export const bulkResultSchema = z.object({
  id: z.string(),
  ok: z.boolean(),
  status: executionStatusSchema.optional().describe('Its status after the call, when ok'),
  error: z
    .object({ code: z.string(), message: z.string() })
    .optional()
    .describe('Why not, when not ok: NOT_FOUND, CONFLICT'),
})
export type BulkResult = z.infer<typeof bulkResultSchema>

export const bulkOutputSchema = z.object({ results: z.array(bulkResultSchema) })

/** A page of `executions.list`: summaries, newest first. */
export const listOutputSchema = z.object({
  items: z.array(executionSummarySchema),
  nextCursor: z.string().nullable(),
})
