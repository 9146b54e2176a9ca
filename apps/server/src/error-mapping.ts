import { ORPCError, ValidationError as ORPCValidationError } from '@orpc/server'
import {
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  UnknownTaskError,
  ValidationError,
  type Issue,
} from '@ratchet/core'

/**
 * The one table from engine errors to API errors. Anything not listed is an internal error
 * (500) whose details stay in the server log.
 *
 * | engine error                          | API error          | status |
 * |---------------------------------------|--------------------|--------|
 * | UnknownTaskError                      | UNKNOWN_TASK       | 404    |
 * | ValidationError                       | INVALID_INPUT      | 400    |
 * | oRPC input validation (contract)      | INVALID_INPUT      | 400    |
 * | PayloadTooLargeError                  | PAYLOAD_TOO_LARGE  | 413    |
 * | NotFoundError                         | NOT_FOUND          | 404    |
 * | ConflictError                         | CONFLICT           | 409    |
 */
export function toApiError(error: unknown): unknown {
  if (error instanceof UnknownTaskError) {
    return new ORPCError('UNKNOWN_TASK', {
      status: 404,
      message: error.message,
      data: { taskId: error.taskId, knownTaskIds: error.knownTaskIds },
      defined: true,
    })
  }
  if (error instanceof ValidationError) return invalidInput(error.message, error.issues)
  if (error instanceof PayloadTooLargeError) {
    return new ORPCError('PAYLOAD_TOO_LARGE', {
      status: 413,
      message: error.message,
      data: { field: error.field, sizeBytes: error.sizeBytes, limitBytes: error.limitBytes },
      defined: true,
    })
  }
  if (error instanceof NotFoundError)
    return new ORPCError('NOT_FOUND', { status: 404, message: error.message, defined: true })
  if (error instanceof ConflictError)
    return new ORPCError('CONFLICT', { status: 409, message: error.message, defined: true })
  if (
    error instanceof ORPCError &&
    error.code === 'BAD_REQUEST' &&
    error.cause instanceof ORPCValidationError
  ) {
    const issues: Issue[] = error.cause.issues.map((i) => ({
      path: (i.path ?? []).map((p) => {
        const key = typeof p === 'object' ? p.key : p
        return typeof key === 'number' ? key : String(key)
      }),
      message: i.message,
    }))
    const described = issues
      .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ')
    return invalidInput(`invalid request: ${described}`, issues)
  }
  return error
}

function invalidInput(message: string, issues: Issue[]) {
  return new ORPCError('INVALID_INPUT', { status: 400, message, data: { issues }, defined: true })
}
