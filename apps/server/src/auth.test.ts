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

  it('takes an entry whose part before the colon is not a name as a bare secret', () => {
    // Otherwise the start of the secret would be logged as the key's name.
    expect(parseApiKeys('9f/Q+x:Zk2aaaaaaaaaaaaaaaa,-x:yyyyyyyyyyyyyyyy')).toEqual([
      { name: 'key1', secret: '9f/Q+x:Zk2aaaaaaaaaaaaaaaa' },
      { name: 'key2', secret: '-x:yyyyyyyyyyyyyyyy' },
    ])
  })

  it('rejects short secrets and repeated names without echoing secrets', () => {
    expect(() => parseApiKeys('a:tooshort')).toThrow(/entry 1 \("a"\): the secret must be at least 16/)
    expect(() => parseApiKeys('a:tooshort')).not.toThrow(/tooshort/)
    expect(() => parseApiKeys('a:aaaaaaaaaaaaaaaa,a:bbbbbbbbbbbbbbbb')).toThrow(/"a" is used twice/)
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
