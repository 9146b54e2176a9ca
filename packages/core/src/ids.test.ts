import { describe, expect, it } from 'vitest'
import { isExecutionId, newExecutionId } from './ids'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const timestampOf = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16)

describe('newExecutionId', () => {
  it('makes a UUIDv7 carrying the timestamp', () => {
    const at = Date.UTC(2031, 5, 1, 12, 0, 0, 123)
    const id = newExecutionId(at)
    expect(id).toMatch(UUID_V7)
    expect(timestampOf(id)).toBe(at)
    expect(isExecutionId(id)).toBe(true)
  })

  it('is monotonic for 5000 ids within the same millisecond, all carrying it', () => {
    const at = Date.UTC(2032, 0, 1)
    const ids = Array.from({ length: 5000 }, () => newExecutionId(at))
    for (const id of ids) expect(id).toMatch(UUID_V7)
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `id ${i} after ${i - 1}`).toBe(true)
    expect(new Set(ids).size).toBe(5000)
    // The counter has room for far more than 5000 ids in one millisecond: none borrows the next one.
    expect(new Set(ids.map(timestampOf))).toEqual(new Set([at]))
  })

  it('stays monotonic when the clock goes back a little (up to 10 s)', () => {
    const a = newExecutionId(Date.UTC(2033, 0, 1, 0, 0, 1))
    const b = newExecutionId(Date.UTC(2033, 0, 1, 0, 0, 0))
    expect(b > a).toBe(true)
  })

  it('starts over at the given time when the clock goes back far (a test clock beside the system clock)', () => {
    const later = Date.UTC(2040, 0, 1)
    const now = Date.UTC(2026, 0, 1)
    newExecutionId(later)
    // The id carries the time it was made with, not the larger time seen before.
    expect(timestampOf(newExecutionId(now))).toBe(now)
  })

  it('orders ids of later milliseconds after earlier ones', () => {
    const a = newExecutionId(Date.UTC(2034, 0, 1))
    const b = newExecutionId(Date.UTC(2034, 0, 1) + 1)
    expect(b > a).toBe(true)
    expect(timestampOf(b)).toBe(Date.UTC(2034, 0, 1) + 1)
  })
})

describe('isExecutionId', () => {
  it.each([
    '',
    'abc',
    '0190a5f2-7c1e-7000-8000-00000000000',
    '0190A5F2-7C1E-7000-8000-000000000000',
    "1' OR '1'='1",
  ])('rejects %j', (value) => {
    expect(isExecutionId(value)).toBe(false)
  })
})
