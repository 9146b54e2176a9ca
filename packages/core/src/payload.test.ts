import { describe, expect, it } from 'vitest'
import { PayloadTooLargeError, ValidationError } from './errors'
import { DEFAULT_MAX_PAYLOAD_BYTES, parsePayload, serializePayload } from './payload'

describe('serializePayload', () => {
  it('serializes to JSON once', () => {
    expect(serializePayload({ a: [1, 'b'] }, 'input', 100)).toBe('{"a":[1,"b"]}')
    expect(serializePayload(undefined, 'output', 100)).toBe('null')
    expect(serializePayload(null, 'output', 100)).toBe('null')
    expect(DEFAULT_MAX_PAYLOAD_BYTES).toBe(1024 * 1024)
  })

  it('accepts a payload of exactly the limit', () => {
    const value = 'x'.repeat(8) // "xxxxxxxx" is 10 bytes of JSON
    expect(serializePayload(value, 'input', 10)).toBe('"xxxxxxxx"')
  })

  it('rejects a payload above the limit, naming field, size and limit', () => {
    let caught: unknown
    try {
      serializePayload('x'.repeat(9), 'input', 10)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(PayloadTooLargeError)
    expect(caught).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      retryable: false,
      field: 'input',
      sizeBytes: 11,
      limitBytes: 10,
      message: 'input is 11 bytes, above the limit of 10 bytes',
    })
  })

  it('counts UTF-8 bytes, not characters', () => {
    // "é" is 2 bytes, "€" 3, "😀" 4 (two UTF-16 units): 2 + 2 + 3 + 4 = 11 bytes.
    expect(serializePayload('é€😀', 'output', 11)).toBe('"é€😀"')
    expect(() => serializePayload('é€😀', 'output', 10)).toThrow(
      'output is 11 bytes, above the limit of 10 bytes',
    )
    const big = '€'.repeat(400) // 1202 bytes of JSON in 402 characters
    expect(() => serializePayload(big, 'input', 1201)).toThrow(new PayloadTooLargeError('input', 1202, 1201))
    expect(serializePayload(big, 'input', 1202)).toHaveLength(402)
  })

  it('rejects values that are not JSON with a ValidationError', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => serializePayload(cyclic, 'input', 100)).toThrow(ValidationError)
    expect(() => serializePayload(1n, 'output', 100)).toThrow(/^output is not serializable to JSON/)
    try {
      serializePayload(1n, 'output', 100)
    } catch (error) {
      expect(error).toMatchObject({ code: 'INVALID_PAYLOAD', retryable: false })
    }
  })
})

describe('parsePayload', () => {
  it('parses JSON and maps null to undefined', () => {
    expect(parsePayload('{"a":1}')).toEqual({ a: 1 })
    expect(parsePayload('null')).toBeNull()
    expect(parsePayload(null)).toBeUndefined()
  })
})
