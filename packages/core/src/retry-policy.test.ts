import { describe, expect, it } from 'vitest'
import {
  DEFAULT_RETRY_POLICY,
  MAX_ATTEMPTS_LIMIT,
  backoffCeilingMs,
  backoffDelayMs,
  resolveRetryPolicy,
} from './retry-policy'

describe('resolveRetryPolicy', () => {
  it('fills the defaults', () => {
    expect(resolveRetryPolicy(undefined)).toEqual({
      maxAttempts: 3,
      backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    })
    expect(resolveRetryPolicy({})).toEqual(DEFAULT_RETRY_POLICY)
  })

  it('keeps given fields and defaults the rest of the back-off', () => {
    expect(resolveRetryPolicy({ maxAttempts: 1, backoff: { initialMs: 5 } })).toEqual({
      maxAttempts: 1,
      backoff: { initialMs: 5, factor: 2, maxMs: 60_000 },
    })
    expect(resolveRetryPolicy({ backoff: { initialMs: 0, factor: 1, maxMs: 0 } }).backoff).toEqual({
      initialMs: 0,
      factor: 1,
      maxMs: 0,
    })
    expect(resolveRetryPolicy({ maxAttempts: MAX_ATTEMPTS_LIMIT }).maxAttempts).toBe(MAX_ATTEMPTS_LIMIT)
  })

  it('does not share or change the frozen defaults', () => {
    const policy = resolveRetryPolicy(undefined)
    policy.backoff.initialMs = 1
    expect(DEFAULT_RETRY_POLICY.backoff.initialMs).toBe(1000)
  })

  it.each([
    [{ maxAttempts: 0 }, 'retry.maxAttempts must be an integer from 1 to 1000, got 0'],
    [{ maxAttempts: 1.5 }, 'retry.maxAttempts must be an integer from 1 to 1000, got 1.5'],
    [
      { maxAttempts: MAX_ATTEMPTS_LIMIT + 1 },
      'retry.maxAttempts must be an integer from 1 to 1000, got 1001',
    ],
    [{ maxAttempts: Number.NaN }, 'retry.maxAttempts must be an integer from 1 to 1000, got NaN'],
    [{ backoff: { initialMs: -1 } }, 'retry.backoff.initialMs must be a number >= 0, got -1'],
    [
      { backoff: { maxMs: Number.POSITIVE_INFINITY } },
      'retry.backoff.maxMs must be a number >= 0, got Infinity',
    ],
    [{ backoff: { factor: 0.5 } }, 'retry.backoff.factor must be a number >= 1, got 0.5'],
    [{ backoff: { factor: Number.NaN } }, 'retry.backoff.factor must be a number >= 1, got NaN'],
  ])('rejects %j with a TypeError naming the field', (input, message) => {
    expect(() => resolveRetryPolicy(input)).toThrow(new TypeError(message))
  })

  it('names the place it was called for', () => {
    expect(() => resolveRetryPolicy({ maxAttempts: 0 }, 'task "x": retry')).toThrow(
      /^task "x": retry\.maxAttempts /,
    )
  })
})

describe('back-off', () => {
  const backoff = { initialMs: 100, factor: 3, maxMs: 5000 }

  it('grows the ceiling by factor per attempt up to maxMs', () => {
    expect([1, 2, 3, 4, 5, 50].map((attempt) => backoffCeilingMs(backoff, attempt))).toEqual([
      100, 300, 900, 2700, 5000, 5000,
    ])
    expect(backoffCeilingMs({ initialMs: 100, factor: 1, maxMs: 5000 }, 10)).toBe(100)
    expect(backoffCeilingMs(backoff, 0)).toBe(100)
  })

  it('draws a full-jitter delay in [0, ceiling)', () => {
    expect(backoffDelayMs(backoff, 3, () => 0)).toBe(0)
    expect(backoffDelayMs(backoff, 3, () => 0.5)).toBe(450)
    expect(backoffDelayMs(backoff, 3, () => 0.999_999)).toBe(899)
    expect(backoffDelayMs(backoff, 9, () => 0.999_999)).toBe(4999)
  })

  it('stays within bounds with the default random source', () => {
    for (let i = 0; i < 1000; i++) {
      const delay = backoffDelayMs(backoff, 2)
      expect(Number.isInteger(delay)).toBe(true)
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThan(300)
    }
  })
})
