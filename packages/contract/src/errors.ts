import { oc } from '@orpc/contract'
import { z } from 'zod'
import { issueSchema } from './schemas'

/**
 * Every typed error of the API. Clients see them through `isDefinedError(error)` with
 * `error.code` and typed `error.data`.
 */
export const errorMap = {
  UNAUTHORIZED: { status: 401, message: 'Missing or invalid API key' },
  NOT_FOUND: { status: 404, message: 'Not found', data: z.object({ id: z.string().optional() }).optional() },
  UNKNOWN_TASK: {
    status: 404,
    message: 'Unknown task',
    data: z.object({ taskId: z.string(), knownTaskIds: z.array(z.string()) }),
  },
  INVALID_INPUT: {
    status: 400,
    message: 'Invalid input',
    data: z.object({ issues: z.array(issueSchema) }),
  },
  CONFLICT: { status: 409, message: 'Conflict' },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: 'Payload too large',
    data: z.object({ field: z.string(), sizeBytes: z.number(), limitBytes: z.number() }).optional(),
  },
} as const

export type ErrorCode = keyof typeof errorMap

export const base = oc.errors(errorMap)
