import { backoffDelayMs, type BackoffOptions } from './retry-policy'
import { DeadlineExceededError, RetryableError, TimeoutError, isRetryable } from './errors'

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
      error instanceof RetryableError && error.retryAfterMs !== undefined
        ? Math.max(0, error.retryAfterMs)
        : backoffDelayMs(facts.backoff, attempt, facts.random)
    return { transition: 'retry', delayMs }
  }
  return {
    transition: error instanceof TimeoutError || error instanceof DeadlineExceededError ? 'time_out' : 'fail',
  }
}
