import { describe, expect, it } from 'vitest'
import { authenticate, parseApiKeys } from './auth'

describe('parseApiKeys', () => {
  it('reads named and bare keys', () => {
    expect(parseApiKeys('web:aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb')).toEqual([
      { name: 'web', secret: 'aaaaaaaaaaaaaaaa' },
      { name: 'key2', secret: 'bbbbbbbbbbbbbbbb' },
    ])
    expect(parseApiKeys(undefined)).toEqual([])
    expect(parseApiKeys(' ')).toEqual([])
  })

  it('splits a named entry at its first colon: a secret may contain colons after its name', () => {
    expect(parseApiKeys('ci:abc:def:aaaaaaaaaaaaaaaa')).toEqual([
      { name: 'ci', secret: 'abc:def:aaaaaaaaaaaaaaaa' },
    ])
  })

  it('refuses an entry whose part before the colon is not a name, by position, echoing none of it', () => {
    // Taken as a bare secret, a typo in a name would quietly become part of the secret.
    for (const [value, position] of [
      ['web:aaaaaaaaaaaaaaaa,9f/Q+x:Zk2bbbbbbbbbbbbbbbb', 2],
      ['-x:yyyyyyyyyyyyyyyy', 1],
      [':zzzzzzzzzzzzzzzz', 1],
      ['my key:wwwwwwwwwwwwwwww', 1],
    ] as const) {
      const error = (() => {
        try {
          parseApiKeys(value)
        } catch (e) {
          return e as Error
        }
        throw new Error(`${value} was accepted`)
      })()
      expect(error.message).toMatch(
        new RegExp(
          `^RATCHET_API_KEYS entry ${position}: the part before the first ':' is not a valid key name`,
        ),
      )
      for (const part of value.split(/[,:]/).filter((p) => p.length > 2 && p !== 'web'))
        expect(error.message).not.toContain(part)
    }
  })

  it('rejects short secrets and repeated names without echoing secrets', () => {
    expect(() => parseApiKeys('a:tooshort')).toThrow(/entry 1 \("a"\): the secret must be at least 16/)
    expect(() => parseApiKeys('a:tooshort')).not.toThrow(/tooshort/)
    expect(() => parseApiKeys('a:aaaaaaaaaaaaaaaa,a:bbbbbbbbbbbbbbbb')).toThrow(/"a" is used twice/)
  })

  it('refuses a value that is set but holds no key (it would turn authentication off)', () => {
    for (const value of [',', ' , ,'])
      expect(() => parseApiKeys(value)).toThrow('RATCHET_API_KEYS is set but holds no key')
    expect(parseApiKeys('')).toEqual([])
  })
})

describe('authenticate', () => {
  const keys = parseApiKeys('web:aaaaaaaaaaaaaaaa,cron:bbbbbbbbbbbbbbbb')

  it('returns the name of the matching key', () => {
    expect(authenticate(keys, 'Bearer bbbbbbbbbbbbbbbb')).toBe('cron')
    expect(authenticate(keys, 'bearer aaaaaaaaaaaaaaaa')).toBe('web')
  })

  it('rejects a missing, malformed, wrong or prefix key', () => {
    for (const header of [
      undefined,
      '',
      'aaaaaaaaaaaaaaaa',
      'Bearer ',
      'Bearer aaaaaaaaaaaaaaa',
      'Bearer aaaaaaaaaaaaaaaaX',
      'Basic aaaaaaaaaaaaaaaa',
    ]) {
      expect(authenticate(keys, header)).toBeUndefined()
    }
  })
})
