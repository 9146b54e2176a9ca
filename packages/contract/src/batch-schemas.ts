/** Schemas of `executions.enqueueMany`: many enqueues in one request, all or nothing. */
import { z } from 'zod'
import { executionSummarySchema } from './read-schemas'
import { enqueueInputSchema } from './schemas'

/** Most executions one `enqueueMany` request may enqueue. */
export const MAX_ENQUEUE_BATCH = 1000

export const enqueueManyInputSchema = z.object({
  items: z
    .array(enqueueInputSchema)
    .min(1)
    .max(MAX_ENQUEUE_BATCH)
    .describe(
      `Up to ${MAX_ENQUEUE_BATCH} enqueues, all valid or none stored; the body must fit the request limit`,
    ),
})
export type EnqueueManyInput = z.input<typeof enqueueManyInputSchema>

export const enqueueManyOutputSchema = z.object({
  results: z
    .array(
      z.object({
        execution: executionSummarySchema,
        created: z.boolean().describe('False when the idempotency key matched an existing execution'),
      }),
    )
    .describe('One per item, in order'),
})
export type EnqueueManyOutput = z.infer<typeof enqueueManyOutputSchema>
