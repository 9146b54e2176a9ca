import { eventIterator } from '@orpc/contract'
import { z } from 'zod'
import { base, refreshErrorMap, wakeupErrorMap } from './errors'
import {
  enqueueInputSchema,
  enqueueOutputSchema,
  executionIdSchema,
  executionSchema,
  listInputSchema,
  taskInfoSchema,
  taskRefreshSchema,
  taskQueueInputSchema,
  taskQueueSchema,
  signalInputSchema,
  wakeupInputSchema,
  waitInputSchema,
  watchEventSchema,
  publishInputSchema,
  publishOutputSchema,
  listEventsInputSchema,
  recordedEventSchema,
  watchInputSchema,
} from './schemas'
import {
  bulkInputSchema,
  bulkOutputSchema,
  changeEventSchema,
  changesInputSchema,
  historyInputSchema,
  historyOutputSchema,
  listOutputSchema,
  stepsInputSchema,
  stepsOutputSchema,
  taskStatsOutputSchema,
  throughputInputSchema,
  throughputOutputSchema,
} from './read-schemas'
import { enqueueManyInputSchema, enqueueManyOutputSchema } from './batch-schemas'

const byId = z.object({ id: executionIdSchema })
const getInputSchema = byId.extend({
  asOf: z.coerce
    .date()
    .optional()
    .describe('Return the execution as it was at this time, rebuilt from its history'),
})

/**
 * The public API of a Ratchet server. Served as oRPC at `/rpc` and as REST (with this
 * contract's routes) at `/api`, documented at `/api/spec.json`.
 */
export const contract = {
  executions: {
    enqueue: base
      .route({
        method: 'POST',
        path: '/executions',
        successStatus: 200,
        summary: 'Enqueue an execution of a task',
        tags: ['executions'],
      })
      .input(enqueueInputSchema)
      .output(enqueueOutputSchema),
    enqueueMany: base
      .route({
        method: 'POST',
        path: '/executions/batch',
        successStatus: 200,
        summary:
          'Enqueue up to 1000 executions in one request and one transaction: all valid and stored, or none',
        description:
          'Each item is validated as `enqueue` validates it; the first invalid item fails the whole request ' +
          '(INVALID_INPUT issue paths start with `items.<index>`) and nothing is stored. Idempotency keys work per item.',
        tags: ['executions'],
      })
      .input(enqueueManyInputSchema)
      .output(enqueueManyOutputSchema),
    get: base
      .route({
        method: 'GET',
        path: '/executions/{id}',
        summary: 'Get an execution, now or as it was at asOf',
        tags: ['executions'],
      })
      .input(getInputSchema)
      .output(executionSchema),
    list: base
      .route({
        method: 'GET',
        path: '/executions',
        summary: 'List executions, newest first, as summaries (no input or output; get has them)',
        tags: ['executions'],
      })
      .input(listInputSchema)
      .output(listOutputSchema),
    cancel: base
      .route({
        method: 'POST',
        path: '/executions/{id}/cancel',
        summary: 'Cancel a queued, running or waiting execution',
        tags: ['executions'],
      })
      .input(byId)
      .output(executionSchema),
    retry: base
      .route({
        method: 'POST',
        path: '/executions/{id}/retry',
        summary:
          'Run a failed, timed-out or cancelled execution again as a new attempt (recorded successes are kept)',
        tags: ['executions'],
      })
      .input(byId)
      .output(executionSchema),
    watch: base
      .route({
        method: 'GET',
        path: '/executions/{id}/watch',
        summary:
          'Stream the execution’s status changes (server-sent events) until it finishes; send Last-Event-ID to resume',
        tags: ['executions'],
      })
      .input(watchInputSchema)
      .output(eventIterator(watchEventSchema)),
    history: base
      .route({
        method: 'GET',
        path: '/executions/{id}/history',
        summary: 'History of an execution (status changes, steps, waits), oldest first, a page at a time',
        tags: ['executions'],
      })
      .input(historyInputSchema)
      .output(historyOutputSchema),
    steps: base
      .route({
        method: 'GET',
        path: '/executions/{id}/steps',
        summary: 'The durable record of an execution (steps, sleeps, waits, children), by position',
        tags: ['executions'],
      })
      .input(stepsInputSchema)
      .output(stepsOutputSchema),
    changes: base
      .route({
        method: 'GET',
        path: '/changes',
        summary:
          'Stream every status change of every execution (server-sent events), from now or after Last-Event-ID',
        tags: ['executions'],
      })
      .input(changesInputSchema)
      .output(eventIterator(changeEventSchema)),
    cancelMany: base
      .route({
        method: 'POST',
        path: '/executions/cancel-many',
        summary: 'Cancel up to 100 executions, each on its own (a result per id)',
        tags: ['executions'],
      })
      .input(bulkInputSchema)
      .output(bulkOutputSchema),
    retryMany: base
      .route({
        method: 'POST',
        path: '/executions/retry-many',
        summary:
          'Retry up to 100 failed, timed-out or cancelled executions, each on its own (a result per id)',
        tags: ['executions'],
      })
      .input(bulkInputSchema)
      .output(bulkOutputSchema),
    signal: base
      .route({
        method: 'POST',
        path: '/executions/{id}/signals',
        summary: 'Send a signal to an execution (kept in its inbox until a wait takes it)',
        tags: ['executions'],
      })
      .input(signalInputSchema)
      .output(executionSchema),
    wakeup: base
      .errors(wakeupErrorMap)
      .route({
        method: 'POST',
        path: '/wakeups',
        summary: 'Complete the wait registered under a wakeup key, with an output or an error',
        tags: ['executions'],
      })
      .input(wakeupInputSchema)
      .output(z.object({ executionId: z.string() })),
    wait: base
      .route({
        method: 'POST',
        path: '/executions/{id}/wait',
        summary:
          'Hold the request until the execution finishes or timeoutMs passes; returns its state either way',
        tags: ['executions'],
      })
      .input(waitInputSchema)
      .output(executionSchema),
  },
  events: {
    publish: base
      .route({
        method: 'POST',
        path: '/events',
        summary: 'Publish an event: it starts every task declared with on: <its type>',
        tags: ['events'],
      })
      .input(publishInputSchema)
      .output(publishOutputSchema),
    list: base
      .route({ method: 'GET', path: '/events', summary: 'Recorded events, newest first', tags: ['events'] })
      .input(listEventsInputSchema)
      .output(z.object({ items: z.array(recordedEventSchema), nextCursor: z.string().nullable() })),
  },
  stats: {
    tasks: base
      .route({
        method: 'GET',
        path: '/stats/tasks',
        summary: 'Per task: executions by status, queue depth, oldest due queued execution',
        tags: ['stats'],
      })
      .output(taskStatsOutputSchema),
    throughput: base
      .route({
        method: 'GET',
        path: '/stats/throughput',
        summary: 'Executions finished (by outcome) and started per time bucket',
        tags: ['stats'],
      })
      .input(throughputInputSchema)
      .output(throughputOutputSchema),
  },
  tasks: {
    list: base
      .route({
        method: 'GET',
        path: '/tasks',
        summary: 'Registered tasks with their JSON Schemas',
        tags: ['tasks'],
      })
      .output(z.object({ tasks: z.array(taskInfoSchema) })),
    refresh: base
      .route({
        method: 'POST',
        path: '/tasks/refresh',
        summary:
          'Fetch the manifests of the apps whose functions the server runs again, and register new and changed functions',
        tags: ['tasks'],
      })
      .errors(refreshErrorMap)
      .output(taskRefreshSchema),
    pause: base
      .route({
        method: 'POST',
        path: '/tasks/{taskId}/pause',
        summary:
          'Pause a task’s queue on every replica: enqueues are accepted, running attempts finish, nothing more starts',
        tags: ['tasks'],
      })
      .input(taskQueueInputSchema)
      .output(taskQueueSchema),
    resume: base
      .route({
        method: 'POST',
        path: '/tasks/{taskId}/resume',
        summary: 'Resume a paused task’s queue: its due executions start at once',
        tags: ['tasks'],
      })
      .input(taskQueueInputSchema)
      .output(taskQueueSchema),
  },
}

export type Contract = typeof contract
