import { ORPCError } from '@orpc/client'
import { RetryableError, TerminalError } from '@ratchet/core'
import type { CallResponse } from './app-client'

/**
 * How a failed call to the app fails its attempt, in one table (by HTTP status when the app
 * answered; by kind when it did not):
 *
 * | outcome                                   | error                                   | retried |
 * |-------------------------------------------|-----------------------------------------|---------|
 * | ctx.signal aborted (timeout, cancel, stop) | the signal's reason                     | as its kind says |
 * | 408, 429, 500, 502, 503, 504              | RetryableError `HTTP_<status>`, after `Retry-After` when sent | yes |
 * | 404                                       | TerminalError `NOT_FOUND`               | no      |
 * | other 4xx (400, 401, 403, 409, 422, …)    | TerminalError `HTTP_<status>`, the app's code in the message | no |
 * | other 5xx                                 | RetryableError `HTTP_<status>`          | yes     |
 * | 3xx (redirects are not followed)          | TerminalError `HTTP_<status>`           | no      |
 * | no response (connection refused, reset, DNS) | RetryableError `NETWORK_ERROR`       | yes     |
 */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

export function mapCallError(
  error: unknown,
  response: CallResponse | undefined,
  signal: AbortSignal,
  procedure: string,
): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))
  const status = response?.status ?? (error instanceof ORPCError ? error.status : undefined)
  const appCode: string | undefined = error instanceof ORPCError ? String(error.code) : undefined
  const detail = error instanceof Error ? error.message : String(error)
  if (status === undefined || status < 300) {
    return new RetryableError(`calling ${procedure} failed before the app answered: ${detail}`, {
      code: 'NETWORK_ERROR',
      cause: error,
    })
  }
  if (status < 400) {
    // Redirects are not followed for signed calls: the app URL is wrong, and retrying won't fix it.
    return new TerminalError(`${procedure} answered ${status} (a redirect): check the app client's url`, {
      code: `HTTP_${status}`,
      cause: error,
    })
  }
  const message = `${procedure} answered ${status}${appCode ? ` ${appCode}` : ''}: ${detail}`
  if (RETRYABLE_STATUSES.has(status) || status >= 500) {
    const retryAfterMs = response?.retryAfterMs
    return new RetryableError(message, {
      code: `HTTP_${status}`,
      cause: error,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    })
  }
  if (status === 404) return new TerminalError(message, { code: 'NOT_FOUND', cause: error })
  return new TerminalError(message, { code: `HTTP_${status}`, cause: error })
}
