/** Every row of the error-mapping table, on the function itself (the HTTP tests cover the common statuses end to end). */
import { ORPCError } from '@orpc/client'
import { describe, expect, it } from 'vitest'
import { RetryableError, TerminalError, TimeoutError } from '@ratchet/core'
import { mapCallError, parseRetryAfter } from '@ratchet/orpc'

const live = new AbortController().signal
const answered = (status: number, retryAfterMs?: number) => ({ status, retryAfterMs })

describe('mapCallError', () => {
  it('an aborted signal wins: its reason is the error', () => {
    const controller = new AbortController()
    const reason = new TimeoutError('attempt timed out')
    controller.abort(reason)
    expect(mapCallError(new Error('aborted'), undefined, controller.signal, 'a.b')).toBe(reason)
  })

  it.each([408, 429, 500, 502, 503, 504, 507])('%i is retryable HTTP_%i', (status) => {
    const error = mapCallError(new ORPCError('X', { status }), answered(status), live, 'a.b')
    expect(error).toBeInstanceOf(RetryableError)
    expect(error).toMatchObject({ code: `HTTP_${status}`, retryable: true })
  })

  it('Retry-After becomes retryAfterMs', () => {
    const error = mapCallError(new ORPCError('X', { status: 503 }), answered(503, 2000), live, 'a.b')
    expect(error).toMatchObject({ retryAfterMs: 2000 })
  })

  it.each([
    [404, 'NOT_FOUND'],
    [400, 'HTTP_400'],
    [409, 'HTTP_409'],
    [422, 'HTTP_422'],
    [301, 'HTTP_301'],
  ])('%i is terminal %s', (status, code) => {
    // A 3xx is no oRPC error: the link fails to read the answer, and its status tells.
    const thrown = status < 400 ? new Error('unexpected response') : new ORPCError('X', { status })
    const error = mapCallError(thrown, answered(status), live, 'a.b')
    expect(error).toBeInstanceOf(TerminalError)
    expect(error).toMatchObject({ code, retryable: false })
  })

  it('no answer at all is a retryable NETWORK_ERROR', () => {
    const error = mapCallError(new TypeError('fetch failed'), undefined, live, 'a.b')
    expect(error).toMatchObject({ code: 'NETWORK_ERROR', retryable: true })
  })
})

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates; ignores the rest', () => {
    const now = Date.UTC(2030, 0, 1)
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000)
    expect(parseRetryAfter(new Date(now - 5000).toUTCString(), now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })
})
