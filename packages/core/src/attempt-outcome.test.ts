import { describe, expect, it } from 'vitest'
import { decideAfterFailure, type FailureFacts } from './attempt-outcome'
import { CancelledError, RetryableError, TerminalError, TimeoutError, ValidationError } from './errors'

const backoff = { initialMs: 1000, factor: 2, maxMs: 60_000 }
const facts = (error: unknown, attempt = 1, maxAttempts = 3): FailureFacts => ({
  error,
  attempt,
  maxAttempts,
  backoff,
  random: () => 0.5,
})

describe('decideAfterFailure', () => {
  it.each([
    ['a plain Error', new Error('boom')],
    ['a non-Error throw', 'boom'],
    ['a RetryableError', new RetryableError('again')],
    ['a TimeoutError', new TimeoutError('slow')],
    ['an Error with retryable: true', Object.assign(new Error('x'), { retryable: true })],
  ])('retries %s while attempts remain, after the back-off', (_name, error) => {
    expect(decideAfterFailure(facts(error, 1))).toEqual({ transition: 'retry', delayMs: 500 })
    expect(decideAfterFailure(facts(error, 2))).toEqual({ transition: 'retry', delayMs: 1000 })
  })

  it.each([
    ['a TerminalError', new TerminalError('no')],
    ['a ValidationError', new ValidationError('bad', [])],
    ['a CancelledError', new CancelledError()],
    ['an Error with retryable: false', Object.assign(new Error('x'), { retryable: false })],
  ])('fails at once on %s', (_name, error) => {
    expect(decideAfterFailure(facts(error, 1, 10))).toEqual({ transition: 'fail' })
  })

  it('fails a retryable error on the last attempt', () => {
    expect(decideAfterFailure(facts(new Error('boom'), 3, 3))).toEqual({ transition: 'fail' })
    expect(decideAfterFailure(facts(new RetryableError('again', { retryAfterMs: 5 }), 1, 1))).toEqual({
      transition: 'fail',
    })
  })

  it('ends a timeout on the last attempt timed_out, and retries it before', () => {
    expect(decideAfterFailure(facts(new TimeoutError('slow'), 2, 3))).toEqual({
      transition: 'retry',
      delayMs: 1000,
    })
    expect(decideAfterFailure(facts(new TimeoutError('slow'), 3, 3))).toEqual({ transition: 'time_out' })
  })

  it('uses retryAfterMs of a RetryableError instead of the back-off, never below 0', () => {
    expect(decideAfterFailure(facts(new RetryableError('later', { retryAfterMs: 12_345 }), 1))).toEqual({
      transition: 'retry',
      delayMs: 12_345,
    })
    expect(decideAfterFailure(facts(new RetryableError('now', { retryAfterMs: -5 }), 1))).toEqual({
      transition: 'retry',
      delayMs: 0,
    })
    expect(decideAfterFailure(facts(new RetryableError('later', { retryAfterMs: 0 }), 1))).toEqual({
      transition: 'retry',
      delayMs: 0,
    })
  })

  it('draws the jitter from the given random source', () => {
    expect(decideAfterFailure({ ...facts(new Error('x'), 3, 5), random: () => 0.999 })).toEqual({
      transition: 'retry',
      delayMs: 3996,
    })
    expect(decideAfterFailure({ ...facts(new Error('x'), 3, 5), random: () => 0 })).toEqual({
      transition: 'retry',
      delayMs: 0,
    })
  })
})
