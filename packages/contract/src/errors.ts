import { oc } from '@orpc/contract'
import { z } from 'zod'
import { executionStatusSchema, issueSchema } from './schemas'

/**
 * Every typed error of the API. Clients see them through `isDefinedError(error)` with
 * `error.code` and typed `error.data`; the server builds them with the typed constructors of
 * this map (`errors.<CODE>({ message, data })`), so status and data cannot drift from it.
 */
export const errorMap = {
  UNAUTHORIZED: { status: 401, message: 'Missing or invalid API key' },
  NOT_FOUND: {
    status: 404,
    message: 'Not found',
    data: z.object({ id: z.string().describe('The execution id that matched nothing') }),
  },
  UNKNOWN_TASK: {
    status: 404,
    message: 'Unknown task',
    data: z.object({ taskId: z.string(), knownTaskIds: z.array(z.string()) }),
  },
  INVALID_INPUT: {
    status: 400,
    message: 'Invalid input',
    data: z.object({
      issues: z
        .array(issueSchema)
        .describe('One per problem; path [] for a body that could not be decoded (malformed JSON)'),
    }),
  },
  CONFLICT: {
    status: 409,
    message: 'Conflict',
    data: z.object({
      executionId: z
        .string()
        .optional()
        .describe(
          'The execution in the way: the one holding the idempotency key, or the one that could not be cancelled, retried, signalled or woken',
        ),
      status: executionStatusSchema.optional().describe('Its status, when that is why'),
    }),
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: 'Payload too large',
    data: z.object({
      field: z
        .string()
        .describe(
          "What is too large: 'body' (the request), 'input', 'signal payload', 'wakeup output', 'event'",
        ),
      sizeBytes: z
        .number()
        .describe(
          'Its size in bytes (for a body sent without Content-Length: the bytes read when it passed the limit)',
        ),
      limitBytes: z.number(),
    }),
  },
  STORAGE_UNAVAILABLE: {
    status: 503,
    message: 'The database is unreachable',
    data: z.object({
      retryable: z
        .literal(true)
        .describe('Always true: nothing was written, so the same request may be sent again (later)'),
    }),
  },
} as const

/** `executions.wakeup`'s NOT_FOUND names the key, not an execution id. */
export const wakeupErrorMap = {
  NOT_FOUND: {
    status: 404,
    message: 'Not found',
    data: z.object({ key: z.string().describe('The wakeup key no wait is registered under') }),
  },
} as const

/** `tasks.refresh`: a task source (an app's functions) could not be loaded; nothing changed. */
export const refreshErrorMap = {
  TASK_SOURCE_UNAVAILABLE: {
    status: 502,
    message: 'A task source could not be loaded',
    data: z.object({
      source: z.string().describe('Which source: the app’s functions URL'),
      retryable: z.literal(true).describe('Always true: nothing changed, so the refresh may be asked again'),
    }),
  },
} as const

export type ErrorCode = keyof typeof errorMap

export const base = oc.errors(errorMap)
