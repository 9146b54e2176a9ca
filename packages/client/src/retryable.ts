import { ORPCError } from '@orpc/client'

/**
 * Whether sending the same request again later may succeed: the server said the database is
 * unreachable (`STORAGE_UNAVAILABLE`, 503: nothing was written), it is restarting or
 * overloaded (502, 503, 504), or the request never got an answer (a network error). Contract
 * errors of the request itself (INVALID_INPUT, NOT_FOUND, CONFLICT, …) and other 4xx are not:
 * the same request fails the same way. An enqueue retried after a network error may run twice
 * unless it carries an `idempotencyKey`.
 */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof ORPCError)
    return error.code === 'STORAGE_UNAVAILABLE' || [502, 503, 504].includes(error.status)
  // fetch rejects with a TypeError when the connection fails or drops (Node: "fetch failed").
  return error instanceof TypeError
}
