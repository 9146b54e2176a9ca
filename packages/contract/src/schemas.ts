import { z } from 'zod'

/** Mirrors `EXECUTION_STATUSES` in @ratchet/core; a type test keeps the two equal. */
export const executionStatusSchema = z.enum([
  'queued',
  'running',
  'waiting',
  'completed',
  'failed',
  'cancelled',
  'timed_out',
])
export type ExecutionStatus = z.infer<typeof executionStatusSchema>

export interface StoredError {
  name: string
  message: string
  code?: string | undefined
  retryable: boolean
  stack?: string | undefined
  cause?: StoredError | undefined
  /** Fields the error's class adds (e.g. `issues`, `retryAfterMs`, `childId`). */
  data?: Record<string, unknown> | undefined
}

export const storedErrorSchema: z.ZodType<StoredError> = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  retryable: z.boolean(),
  stack: z.string().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  get cause() {
    return storedErrorSchema.optional()
  },
})

export const issueSchema = z.object({
  path: z.array(z.union([z.string(), z.number()])),
  message: z.string(),
})
export type Issue = z.infer<typeof issueSchema>

export const executionIdSchema = z.string().min(1).max(64).describe('Execution id (opaque)')

export const executionSchema = z.object({
  id: z.string(),
  taskId: z.string(),
  status: executionStatusSchema,
  input: z.unknown(),
  output: z.unknown().describe('Set once completed'),
  error: storedErrorSchema
    .nullable()
    .describe('The final error, or the last failed attempt’s while retrying'),
  runs: z
    .number()
    .int()
    .describe(
      'Runs so far: every time a worker took it up, resumes after durable waits and recoveries after a crash included; keeps counting across executions.retry',
    ),
  attempt: z
    .number()
    .int()
    .describe(
      'The attempt it is on: failures + 1, what ctx.attempt says; once it ended failed or timed_out, the attempt that ended it. maxAttempts bounds it',
    ),
  failures: z
    .number()
    .int()
    .describe(
      'Failed attempts so far (errors, timeouts, an exhausted recovery budget; not runs lost to a crash); it ends when they reach maxAttempts',
    ),
  maxAttempts: z.number().int(),
  recoveries: z
    .number()
    .int()
    .describe(
      'Runs lost to a crash and recovered in a row since it last made progress; past maxRecoveries it fails with RECOVERIES_EXHAUSTED',
    ),
  maxRecoveries: z.number().int(),
  timeoutMs: z.number().int(),
  priority: z.number().int(),
  idempotencyKey: z.string().nullable(),
  runAt: z.date(),
  createdAt: z.date(),
  updatedAt: z.date(),
  startedAt: z.date().nullable(),
  finishedAt: z.date().nullable(),
  parentId: z.string().nullable().describe('The execution that started it (ctx.child, ctx.spawn)'),
  rootId: z.string().describe('The top of its tree (its own id at the top)'),
  deadlineAt: z.date().nullable(),
})
export type Execution = z.infer<typeof executionSchema>

export const enqueueOptionsSchema = z
  .object({
    idempotencyKey: z.string().min(1).max(255).optional().describe('Same task and key → the same execution'),
    delayMs: z.number().int().min(0).optional().describe('Do not start before this many ms from now'),
    runAt: z.coerce.date().optional().describe('Do not start before this time (exclusive with delayMs)'),
    priority: z
      .number()
      .int()
      .min(-1000)
      .max(1000)
      .optional()
      .describe('Higher runs first; default: the task’s'),
    timeoutMs: z.number().int().min(1).optional().describe('Time limit of each run; default: the task’s'),
    maxAttempts: z.number().int().min(1).max(1000).optional().describe('Total attempts; default: the task’s'),
    maxRecoveries: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .optional()
      .describe('Recoveries in a row after crashes before it fails; default: the task’s (5 unless set)'),
    deadlineMs: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Bound on the whole execution, across attempts and waits; past it, it ends timed_out'),
  })
  .strict()
export type EnqueueOptions = z.input<typeof enqueueOptionsSchema>

export const enqueueInputSchema = z.object({
  taskId: z.string().min(1).max(128).describe('Task id, or its key in the server’s tasks object'),
  input: z.unknown().describe('Checked against the task’s input schema'),
  options: enqueueOptionsSchema.optional(),
})
export type EnqueueInput = z.input<typeof enqueueInputSchema>

export const enqueueOutputSchema = z.object({
  execution: executionSchema,
  created: z.boolean().describe('False when the idempotency key matched an existing execution'),
})

export const listInputSchema = z.object({
  taskId: z.string().min(1).optional(),
  parentId: z.string().min(1).optional().describe('Children of this execution'),
  rootId: z.string().min(1).optional().describe('This execution and everything below it'),
  status: z.union([executionStatusSchema, z.array(executionStatusSchema).min(1)]).optional(),
  createdAfter: z.coerce.date().optional().describe('Created at or after this time'),
  createdBefore: z.coerce.date().optional().describe('Created before this time'),
  idempotencyKey: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('Enqueued with this idempotency key (with taskId: at most one)'),
  cursor: z.string().optional().describe('nextCursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).optional().describe('Default 50'),
})
export type ListInput = z.input<typeof listInputSchema>

export const historyEventSchema = z.object({
  seq: z.number().int(),
  at: z.date(),
  from: executionStatusSchema.nullable(),
  to: executionStatusSchema,
  run: z.number().int().describe('The run it happened in (runs at the time; 0 before the first)'),
  detail: z.unknown(),
  event: z.string().describe("'status' for a transition; 'step', 'wait', 'signal', 'child' inside a run"),
  name: z.string().nullable().describe('The step, wait or signal name'),
})
export type HistoryEvent = z.infer<typeof historyEventSchema>

export const signalInputSchema = z.object({
  id: executionIdSchema,
  name: z.string().min(1).max(200).describe('Matched against ctx.waitForSignal names'),
  payload: z.unknown().describe('Any JSON; kept in the inbox until a wait takes it'),
})
export type SignalInput = z.input<typeof signalInputSchema>

export const wakeupInputSchema = z
  .object({
    key: z.string().min(1).max(255).describe('The key given to ctx.waitForWakeup'),
    output: z.unknown().optional().describe('Resolves the wait with this value'),
    error: z
      .object({ message: z.string().min(1), code: z.string().optional() })
      .optional()
      .describe('Fails the wait: thrown inside the task with this message and code'),
  })
  .refine((input) => 'output' in input !== (input.error !== undefined), {
    message: 'give exactly one of output or error',
    path: ['output'],
  })
export type WakeupInput = z.input<typeof wakeupInputSchema>

/** Longest a single wait request is held open; clients loop for longer waits. */
export const MAX_WAIT_REQUEST_MS = 60_000

export const waitInputSchema = z.object({
  id: executionIdSchema,
  timeoutMs: z
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_REQUEST_MS)
    .optional()
    .describe('Default 25 000, at most 60 000'),
})

export const backoffSchema = z.object({ initialMs: z.number(), factor: z.number(), maxMs: z.number() })

export const taskInfoSchema = z.object({
  id: z.string(),
  key: z.string().nullable().describe('Its key in the server’s tasks object, which typed clients use'),
  description: z.string().nullable(),
  inputSchema: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('JSON Schema, when the schema library provides one'),
  outputSchema: z.record(z.string(), z.unknown()).nullable(),
  timeoutMs: z.number().int(),
  priority: z.number().int(),
  retry: z.object({ maxAttempts: z.number().int(), backoff: backoffSchema }),
  maxRecoveries: z.number().int().describe('Recoveries in a row after crashes before an execution fails'),
  on: z.array(z.string()).describe('Event types that start it'),
  retentionMs: z
    .union([z.number().int(), z.literal('forever')])
    .describe('How long its finished trees are kept (its own retentionMs, else the server’s)'),
  debounce: z
    .object({ periodMs: z.number().int(), maxWaitMs: z.number().int().nullable() })
    .nullable()
    .describe('Enqueues with the same key collapse into one execution that runs once the key is quiet'),
})
export type TaskInfo = z.infer<typeof taskInfoSchema>

const idsSchema = z.array(z.string())
export const taskRefreshSchema = z.object({
  sources: z
    .array(
      z.object({
        name: z.string().describe('The source: an app’s functions URL'),
        added: idsSchema.describe('Ids it offers now that were not registered'),
        updated: idsSchema.describe('Ids registered again with their current schema and options'),
        missing: idsSchema.describe(
          'Ids it no longer offers: still registered until a restart, so their executions find them',
        ),
      }),
    )
    .describe('One per task source (an appFunctions app); empty when no task has a source'),
})
export type TaskRefresh = z.infer<typeof taskRefreshSchema>

export const taskQueueInputSchema = z.object({
  taskId: z.string().min(1).describe('The task id, or its key in the server’s tasks object'),
})
export const taskQueueSchema = z.object({
  taskId: z.string(),
  pausedAt: z.date().nullable().describe('Since when its queue is paused; null when it runs'),
})
export type TaskQueue = z.infer<typeof taskQueueSchema>

export const watchInputSchema = z.object({ id: executionIdSchema })

/**
 * One status change of a watched execution, from its history: `seq` orders them (and is the
 * SSE event id, so a reconnecting client resumes after the last one it saw). `execution` is
 * the execution as read when the event was sent; it may already be past `status` when the
 * watcher is catching up.
 */
export const watchEventSchema = z.object({
  seq: z.number().int(),
  status: executionStatusSchema,
  from: executionStatusSchema.nullable(),
  run: z.number().int().describe('The run it happened in (runs at the time; 0 before the first)'),
  at: z.date(),
  execution: executionSchema,
})
export type WatchEvent = z.infer<typeof watchEventSchema>

export const publishInputSchema = z.object({
  event: z
    .unknown()
    .describe('The event: an object with a string `type`, checked against the server’s events schema'),
  id: z.string().min(1).max(200).optional().describe('Publishing the same id again starts nothing new'),
})

export const publishOutputSchema = z.object({
  eventId: z.string(),
  type: z.string(),
  executions: z
    .array(z.object({ taskId: z.string(), executionId: z.string(), created: z.boolean() }))
    .describe('One per task declared with on: <type>; empty when none listens'),
})
export type PublishResult = z.infer<typeof publishOutputSchema>

export const recordedEventSchema = z.object({
  id: z.string(),
  type: z.string(),
  event: z.unknown(),
  createdAt: z.date(),
  executionIds: z.array(z.string()),
})
export type RecordedEvent = z.infer<typeof recordedEventSchema>

export const listEventsInputSchema = z.object({
  type: z.string().min(1).optional(),
  cursor: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional().describe('Default 50'),
})
