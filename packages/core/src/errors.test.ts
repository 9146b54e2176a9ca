import { describe, expect, it } from 'vitest'
import {
  CancelledError,
  ChildExecutionError,
  ConflictError,
  LeaseExpiredError,
  NotFoundError,
  PayloadTooLargeError,
  RatchetError,
  RetryableError,
  ShutdownError,
  TerminalError,
  TimeoutError,
  UnknownTaskError,
  ValidationError,
  WaitTimeoutError,
  deserializeError,
  isRetryable,
  serializeError,
  type StoredError,
} from './errors'

describe('serializeError', () => {
  it('keeps name, message and stack of an Error', () => {
    const error = new TypeError('bad thing')
    const stored = serializeError(error)
    expect(stored).toEqual({ name: 'TypeError', message: 'bad thing', retryable: true, stack: error.stack })
    expect(stored.stack).toContain('bad thing')
  })

  it('keeps the code and retryability of Ratchet errors', () => {
    expect(serializeError(new TerminalError('no', { code: 'CARD_DECLINED' }))).toMatchObject({
      name: 'TerminalError',
      message: 'no',
      code: 'CARD_DECLINED',
      retryable: false,
    })
    expect(serializeError(new TerminalError('no'))).toMatchObject({ code: 'TERMINAL', retryable: false })
    expect(serializeError(new RetryableError('again'))).toMatchObject({
      name: 'RetryableError',
      code: 'RETRYABLE',
      retryable: true,
    })
    expect(serializeError(new TimeoutError('slow'))).toMatchObject({
      name: 'TimeoutError',
      code: 'TIMEOUT',
      retryable: true,
    })
    expect(serializeError(new CancelledError())).toMatchObject({
      name: 'CancelledError',
      code: 'CANCELLED',
      retryable: false,
    })
    expect(serializeError(new LeaseExpiredError())).toMatchObject({ code: 'LEASE_EXPIRED', retryable: true })
    expect(serializeError(new ShutdownError())).toMatchObject({ code: 'SHUTDOWN', retryable: true })
  })

  it('keeps a string code of any Error, and ignores a non-string one', () => {
    expect(serializeError(Object.assign(new Error('nope'), { code: 'ENOENT' })).code).toBe('ENOENT')
    expect(serializeError(Object.assign(new Error('nope'), { code: 42 }))).not.toHaveProperty('code')
  })

  it('marks an Error with retryable: false as not retryable', () => {
    expect(serializeError(Object.assign(new Error('x'), { retryable: false })).retryable).toBe(false)
  })

  it('follows the cause chain', () => {
    const root = new Error('disk full')
    const middle = new RetryableError('write failed', { cause: root })
    const top = new TerminalError('save failed', { cause: middle })
    const stored = serializeError(top)
    expect(stored.message).toBe('save failed')
    expect(stored.cause).toMatchObject({ name: 'RetryableError', message: 'write failed', retryable: true })
    expect(stored.cause?.cause).toMatchObject({ name: 'Error', message: 'disk full', retryable: true })
    expect(stored.cause?.cause?.cause).toBeUndefined()
    expect(serializeError(new Error('x', { cause: 'plain string' })).cause).toEqual({
      name: 'NonError',
      message: 'plain string',
      retryable: true,
    })
  })

  it('stops a cyclic or very deep cause chain after 5 causes', () => {
    const cyclic = new Error('loop')
    cyclic.cause = cyclic
    let depth = 0
    for (let s: StoredError | undefined = serializeError(cyclic); s; s = s.cause) depth++
    expect(depth).toBe(6)
  })

  it.each([
    ['a string', 'oops', 'oops'],
    ['a number', 42, '42'],
    ['an object', { a: 1 }, '{"a":1}'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['a BigInt', 10n, '10'],
    ['a symbol', Symbol('s'), 'Symbol(s)'],
  ])('turns %s thrown into a NonError', (_name, value, message) => {
    expect(serializeError(value)).toEqual({ name: 'NonError', message, retryable: true })
  })

  it('does not throw on a cyclic object', () => {
    const value: Record<string, unknown> = {}
    value.self = value
    expect(serializeError(value)).toEqual({ name: 'NonError', message: '[object Object]', retryable: true })
  })

  it('truncates long messages and stacks', () => {
    const error = new Error('m'.repeat(20_000))
    error.stack = 's'.repeat(40_000)
    const stored = serializeError(error)
    expect(stored.message).toBe(`${'m'.repeat(8192)}… (truncated)`)
    expect(stored.stack).toBe(`${'s'.repeat(16_384)}… (truncated)`)
    expect(serializeError('x'.repeat(9000)).message).toBe(`${'x'.repeat(8192)}… (truncated)`)
    expect(serializeError(new Error('m'.repeat(8192))).message).toBe('m'.repeat(8192))
  })

  it('is JSON-safe', () => {
    const stored = serializeError(new TerminalError('a', { cause: new Error('b') }))
    expect(JSON.parse(JSON.stringify(stored))).toEqual(stored)
  })
})

describe('error classes', () => {
  it('set name, code and retryable', () => {
    const cases: [RatchetError, string, string, boolean][] = [
      [new TerminalError('x'), 'TerminalError', 'TERMINAL', false],
      [new RetryableError('x'), 'RetryableError', 'RETRYABLE', true],
      [new TimeoutError('x'), 'TimeoutError', 'TIMEOUT', true],
      [new CancelledError(), 'CancelledError', 'CANCELLED', false],
      [new ShutdownError(), 'ShutdownError', 'SHUTDOWN', true],
      [new LeaseExpiredError(), 'LeaseExpiredError', 'LEASE_EXPIRED', true],
      [new ValidationError('x', []), 'ValidationError', 'INVALID_INPUT', false],
      [new UnknownTaskError('x', []), 'UnknownTaskError', 'UNKNOWN_TASK', false],
      [new NotFoundError('x'), 'NotFoundError', 'NOT_FOUND', false],
      [new ConflictError('x'), 'ConflictError', 'CONFLICT', false],
      [new PayloadTooLargeError('input', 2, 1), 'PayloadTooLargeError', 'PAYLOAD_TOO_LARGE', false],
    ]
    for (const [error, name, code, retryable] of cases) {
      expect(error).toBeInstanceOf(RatchetError)
      expect(error).toBeInstanceOf(Error)
      expect([error.name, error.code, error.retryable, isRetryable(error)]).toEqual([
        name,
        code,
        retryable,
        retryable,
      ])
    }
  })

  it('UnknownTaskError lists the registered tasks', () => {
    expect(new UnknownTaskError('nope', ['a', 'b']).message).toBe(
      'unknown task "nope"; registered tasks: a, b',
    )
    expect(new UnknownTaskError('nope', []).message).toBe('unknown task "nope"; registered tasks: (none)')
  })

  it('keeps a cause', () => {
    const cause = new Error('root')
    expect(new TerminalError('top', { cause }).cause).toBe(cause)
    expect(new TerminalError('top')).not.toHaveProperty('cause')
  })

  it('isRetryable treats plain errors and non-errors as retryable', () => {
    expect(isRetryable(new Error('x'))).toBe(true)
    expect(isRetryable('x')).toBe(true)
    expect(isRetryable(undefined)).toBe(true)
    expect(isRetryable(Object.assign(new Error('x'), { retryable: false }))).toBe(false)
  })
})

describe('deserializeError', () => {
  it('gives back an instance of the Ratchet error class that was stored, with name, code and message', () => {
    const original = new WaitTimeoutError('wait "approve" timed out')
    const replayed = deserializeError(serializeError(original))
    expect(replayed).toBeInstanceOf(WaitTimeoutError)
    expect(replayed).toBeInstanceOf(RatchetError)
    expect(replayed).toMatchObject({
      name: 'WaitTimeoutError',
      code: 'WAIT_TIMEOUT',
      message: 'wait "approve" timed out',
      retryable: false,
      stack: original.stack,
    })
    const terminal = deserializeError(serializeError(new TerminalError('no', { code: 'CARD_DECLINED' })))
    expect(terminal).toBeInstanceOf(TerminalError)
    expect(terminal).toMatchObject({ code: 'CARD_DECLINED', retryable: false })
    expect(isRetryable(terminal)).toBe(false)
  })

  it('gives a ValidationError stored without data empty issues', () => {
    const invalid = deserializeError({
      name: 'ValidationError',
      message: 'bad',
      code: 'INVALID_SIGNAL',
      retryable: false,
    })
    expect(invalid).toBeInstanceOf(ValidationError)
    expect((invalid as ValidationError).issues).toEqual([])
  })

  it('gives any other error back as a plain Error with its name, code and retryability', () => {
    const plain = deserializeError({ name: 'TypeError', message: 'oops', retryable: true })
    expect(plain).not.toBeInstanceOf(TypeError)
    expect(plain).not.toBeInstanceOf(RatchetError)
    expect(plain).toMatchObject({ name: 'TypeError', message: 'oops' })
    expect((plain as { code?: string }).code).toBeUndefined()
    expect(isRetryable(plain)).toBe(true)
    // A replay stores what the first run stored: the round trip is the identity.
    expect(serializeError(plain)).toEqual({
      name: 'TypeError',
      message: 'oops',
      retryable: true,
      stack: plain.stack,
    })
    const coded = deserializeError({ name: 'HttpError', message: 'no', code: 'E_HTTP', retryable: false })
    expect(coded).toMatchObject({ name: 'HttpError', code: 'E_HTTP' })
    expect(isRetryable(coded)).toBe(false)
    // Only own entries of the table count: a name like "constructor" is not a class.
    const odd = deserializeError({ name: 'constructor', message: 'x', retryable: true })
    expect(odd).not.toBeInstanceOf(RatchetError)
    expect(odd.name).toBe('constructor')
  })

  it('keeps the fields of a Ratchet error class and the cause chain across the round trip', () => {
    const issues = [{ path: ['email'], message: 'expected an email' }]
    const invalid = deserializeError(
      JSON.parse(JSON.stringify(serializeError(new ValidationError('bad input', issues)))) as StoredError,
    )
    expect(invalid).toBeInstanceOf(ValidationError)
    expect((invalid as ValidationError).issues).toEqual(issues)

    const later = deserializeError(serializeError(new RetryableError('busy', { retryAfterMs: 1500 })))
    expect(later).toBeInstanceOf(RetryableError)
    expect((later as RetryableError).retryAfterMs).toBe(1500)

    const root = new TypeError('socket hang up')
    const wrapped = new TerminalError('charge failed', { code: 'CHARGE', cause: root })
    const replayed = deserializeError(serializeError(wrapped))
    expect(replayed).toBeInstanceOf(TerminalError)
    expect(replayed.cause).toBeInstanceOf(Error)
    expect(replayed.cause).toMatchObject({ name: 'TypeError', message: 'socket hang up' })
    expect(serializeError(replayed)).toEqual(serializeError(wrapped))
  })

  it("a user's subclass of a Ratchet class replays as that class, with its name and fields", () => {
    class PaymentDeclined extends TerminalError {
      readonly reason: string
      constructor(reason: string) {
        super(`declined: ${reason}`, { code: 'DECLINED' })
        this.reason = reason
      }
    }
    const stored = serializeError(new PaymentDeclined('insufficient funds'))
    expect(stored).toMatchObject({ name: 'PaymentDeclined', code: 'DECLINED', retryable: false })
    const replayed = deserializeError(JSON.parse(JSON.stringify(stored)) as StoredError)
    expect(replayed).toBeInstanceOf(TerminalError)
    expect(replayed).toMatchObject({
      name: 'PaymentDeclined',
      code: 'DECLINED',
      reason: 'insufficient funds',
    })
    expect(isRetryable(replayed)).toBe(false)
    expect(serializeError(replayed)).toEqual(stored)
  })

  it("a ChildExecutionError stores its child's error briefly, so a deep tree's errors stay small", () => {
    let error: ChildExecutionError | TerminalError = new TerminalError('leaf broke')
    for (let depth = 0; depth < 30; depth++)
      error = new ChildExecutionError(`child-${depth}`, 'failed', serializeError(error))
    const stored = serializeError(error)
    expect(stored.data).toMatchObject({
      childId: 'child-29',
      childStatus: 'failed',
      childError: { name: 'ChildExecutionError', code: 'TERMINAL', retryable: false },
    })
    expect(Object.keys(stored.data!.childError as object).sort()).toEqual([
      'code',
      'message',
      'name',
      'retryable',
    ])
    expect(JSON.stringify(stored.data).length).toBeLessThan(20_000)
  })

  it('stores no data for errors without extra fields, and none that is not JSON', () => {
    expect(serializeError(new CancelledError()).data).toBeUndefined()
    const odd = new RetryableError('x')
    Object.assign(odd, { self: odd })
    expect(serializeError(odd).data).toBeUndefined()
  })
})
