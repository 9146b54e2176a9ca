/**
 * Retry policy: `maxAttempts` counts total attempts (1 = never retry). The delay before
 * attempt n+1 is drawn uniformly from [0, min(maxMs, initialMs * factor^(n-1))] ("full
 * jitter"), which spreads a burst of failures instead of retrying them in lock-step.
 */
export interface BackoffOptions {
  /** Ceiling of the first delay. @default 1000 */
  initialMs: number
  /** Growth of the ceiling per attempt. @default 2 */
  factor: number
  /** Largest ceiling. @default 60_000 */
  maxMs: number
}

export interface RetryPolicy {
  /** Total attempts, the first one included. @default 3 */
  maxAttempts: number
  backoff: BackoffOptions
}

export interface RetryPolicyInput {
  maxAttempts?: number
  backoff?: Partial<BackoffOptions>
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  backoff: Object.freeze({ initialMs: 1000, factor: 2, maxMs: 60_000 }),
})

/** Upper bound on `maxAttempts`, so a typo cannot create a practically endless retry loop. */
export const MAX_ATTEMPTS_LIMIT = 1000

/**
 * Fills defaults and checks ranges. Throws `TypeError` naming the field on bad input.
 */
export function resolveRetryPolicy(input: RetryPolicyInput | undefined, where = 'retry'): RetryPolicy {
  const maxAttempts = input?.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new TypeError(
      `${where}.maxAttempts must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT}, got ${String(maxAttempts)}`,
    )
  }
  const backoff = { ...DEFAULT_RETRY_POLICY.backoff, ...input?.backoff }
  for (const key of ['initialMs', 'maxMs'] as const) {
    if (!Number.isFinite(backoff[key]) || backoff[key] < 0) {
      throw new TypeError(`${where}.backoff.${key} must be a number >= 0, got ${String(backoff[key])}`)
    }
  }
  if (!Number.isFinite(backoff.factor) || backoff.factor < 1) {
    throw new TypeError(`${where}.backoff.factor must be a number >= 1, got ${String(backoff.factor)}`)
  }
  return { maxAttempts, backoff }
}

/** The largest delay after failed attempt `attempt` (1-based). */
export function backoffCeilingMs(backoff: BackoffOptions, attempt: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** Math.max(0, attempt - 1))
}

/** A full-jitter delay after failed attempt `attempt` (1-based). `random` returns [0, 1). */
export function backoffDelayMs(
  backoff: BackoffOptions,
  attempt: number,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeilingMs(backoff, attempt))
}
