import { describe, expect, it } from 'vitest'
import { canonicalJson, sameJson } from './canonical-json'

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    )
  })

  it('writes scalars, escapes and left-out fields as JSON.stringify does', () => {
    expect(canonicalJson('a"\n')).toBe(JSON.stringify('a"\n'))
    expect(canonicalJson(1e21)).toBe('1e+21')
    expect(canonicalJson({ x: undefined, y: 1 })).toBe('{"y":1}')
    expect(canonicalJson([undefined])).toBe('[null]')
  })

  it('treats a "__proto__" key as data', () => {
    const parsed = JSON.parse('{"__proto__":{"x":1},"a":2}') as unknown
    expect(canonicalJson(parsed)).toBe('{"__proto__":{"x":1},"a":2}')
  })
})

describe('sameJson', () => {
  it('is true for the same value in another key order, false for another value', () => {
    expect(sameJson('{"a":1,"b":{"c":2,"d":3}}', '{"b":{"d":3,"c":2},"a":1}')).toBe(true)
    expect(sameJson('{"a":1,"b":{"c":2,"d":3}}', '{"b":{"d":4,"c":2},"a":1}')).toBe(false)
    expect(sameJson('[1,2]', '[2,1]')).toBe(false)
    expect(sameJson('{"a":[]}', '{"a":{}}')).toBe(false)
  })
})
