import {
  createORPCErrorConstructorMap,
  ORPCError,
  ValidationError as ORPCValidationError,
  type ORPCErrorConstructorMap,
} from '@orpc/server'
import { errorMap } from '@ratchet/contract'
import {
  ConflictError,
  isExecutionStatus,
  NotFoundError,
  PayloadTooLargeError,
  StorageUnavailableError,
  UnknownTaskError,
  ValidationError,
  type Issue,
} from '@ratchet/core'

/**
 * A 500 for an error the router's middleware already logged (with the procedure and key):
 * the handler does not log it again. Its message says nothing of the cause.
 */
export class InternalError extends ORPCError<'INTERNAL_SERVER_ERROR', undefined> {
  constructor(cause: unknown) {
    super('INTERNAL_SERVER_ERROR', { message: 'internal server error', cause })
  }
}

/** The typed constructors of the contract's errors (status and data from its error map). */
export type ApiErrors = ORPCErrorConstructorMap<typeof errorMap>

/**
 * The same constructors for the HTTP layer, outside any procedure (a body that cannot be
 * decoded, a body over the limit). Inside procedures, oRPC passes them as `errors`.
 */
export const apiErrors: ApiErrors = createORPCErrorConstructorMap(errorMap)

/**
 * The one table from engine errors to API errors. Anything not listed is an internal error
 * (500) whose details stay in the server log.
 *
 * | engine error                           | API error          | status | data                          |
 * |----------------------------------------|--------------------|--------|-------------------------------|
 * | UnknownTaskError                       | UNKNOWN_TASK       | 404    | taskId, knownTaskIds          |
 * | ValidationError                        | INVALID_INPUT      | 400    | issues                        |
 * | oRPC input validation (contract)       | INVALID_INPUT      | 400    | issues                        |
 * | a body that cannot be decoded          | INVALID_INPUT      | 400    | issues (path [])              |
 * | PayloadTooLargeError                   | PAYLOAD_TOO_LARGE  | 413    | field, sizeBytes, limitBytes  |
 * | a request body over the limit          | PAYLOAD_TOO_LARGE  | 413    | field 'body', sizes           |
 * | NotFoundError (an execution id)        | NOT_FOUND          | 404    | id                            |
 * | NotFoundError (a wake-up key)          | NOT_FOUND          | 404    | key (executions.wakeup only)  |
 * | ConflictError                          | CONFLICT           | 409    | executionId?, status?         |
 * | StorageUnavailableError                | STORAGE_UNAVAILABLE| 503    | retryable: true               |
 * | a missing or wrong API key             | UNAUTHORIZED       | 401    | —                             |
 *
 * STORAGE_UNAVAILABLE is the database's outage, not a fault of the server: it is logged as one
 * warn line without a stack (see `isOutage`), and clients retry it.
 */
export function toApiError(error: unknown, errors: ApiErrors = apiErrors): unknown {
  if (error instanceof UnknownTaskError) {
    return errors.UNKNOWN_TASK({
      message: error.message,
      data: { taskId: error.taskId, knownTaskIds: error.knownTaskIds },
    })
  }
  if (error instanceof ValidationError) return invalidInput(errors, error.message, error.issues)
  if (error instanceof PayloadTooLargeError) {
    return errors.PAYLOAD_TOO_LARGE({
      message: error.message,
      data: { field: error.field, sizeBytes: error.sizeBytes, limitBytes: error.limitBytes },
    })
  }
  // A wake-up key's NOT_FOUND is executions.wakeup's own (see wakeupNotFound).
  if (error instanceof NotFoundError && error.executionId !== undefined)
    return errors.NOT_FOUND({ message: error.message, data: { id: error.executionId } })
  if (error instanceof ConflictError) {
    const { executionId, status } = error
    return errors.CONFLICT({
      message: error.message,
      data: {
        ...(executionId !== undefined ? { executionId } : {}),
        ...(status !== undefined && isExecutionStatus(status) ? { status } : {}),
      },
    })
  }
  if (error instanceof StorageUnavailableError)
    return errors.STORAGE_UNAVAILABLE({ message: error.message, data: { retryable: true }, cause: error })
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
    return invalidInput(errors, `invalid request: ${described}`, issues)
  }
  return error
}

/** Whether `error` is an API error that says the database is unreachable (a 503 to log quietly). */
export function isOutage(error: unknown): error is ORPCError<'STORAGE_UNAVAILABLE', { retryable: true }> {
  return error instanceof ORPCError && error.code === 'STORAGE_UNAVAILABLE'
}

/**
 * A 5xx that is another system's failure, not the server's (the database, an app whose
 * functions it runs): logged as one warn line without a stack, never at error level.
 */
export function isUpstreamFailure(error: unknown): boolean {
  return isOutage(error) || (error instanceof ORPCError && error.code === 'TASK_SOURCE_UNAVAILABLE')
}

/**
 * The driver's reason under an outage error (e.g. `connect ECONNREFUSED …`): the message of
 * the innermost `cause`, for a log line or a readiness reason.
 */
export function outageReason(error: unknown): string {
  let cause: unknown = error
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause
  return cause instanceof Error ? cause.message : String(cause)
}

function invalidInput(errors: ApiErrors, message: string, issues: Issue[]) {
  return errors.INVALID_INPUT({ message, data: { issues } })
}
