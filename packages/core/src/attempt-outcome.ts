import { backoffDelayMs, type BackoffOptions } from './retry-policy'
import { DeadlineExceededError, RetryableError, TimeoutError, isRetryable } from './errors'

/** Longest `retryAfterMs` honoured: 30 days. */
export const MAX_RETRY_AFTER_MS = 30 * 24 * 60 * 60 * 1000

/** What happens to an execution after one of its attempts threw. Pure: no I/O, no clock. */
export type FailureDecision =
  { transition: 'retry'; delayMs: number } | { transition: 'fail' } | { transition: 'time_out' }

export interface FailureFacts {
  error: unknown
  /** The attempt that failed, 1-based. */
  attempt: number
  maxAttempts: number
  backoff: BackoffOptions
  random?: () => number
}

/**
 * Retry while the error is retryable and attempts remain; a {@link RetryableError}'s
 * `retryAfterMs` replaces the back-off. When attempts run out, a timeout ends the
 * execution `timed_out` (as does a passed deadline, at once), anything else `failed`.
 */
export function decideAfterFailure(facts: FailureFacts): FailureDecision {
  const { error, attempt, maxAttempts } = facts
  if (isRetryable(error) && attempt < maxAttempts) {
    const delayMs =
      // A retryAfterMs that is not a finite number (NaN from a missing header) falls back to the back-off.
      error instanceof RetryableError &&
      error.retryAfterMs !== undefined &&
      Number.isFinite(error.retryAfterMs)
        ? Math.min(Math.max(0, error.retryAfterMs), MAX_RETRY_AFTER_MS)
        : backoffDelayMs(facts.backoff, attempt, facts.random)
    return { transition: 'retry', delayMs }
  }
  return {
    transition: error instanceof TimeoutError || error instanceof DeadlineExceededError ? 'time_out' : 'fail',
  }
}
