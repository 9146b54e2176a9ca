import { describe, expect, it } from 'vitest'
import { runStorageConformance } from '@ratchet/storage/conformance'

// The runner's own checks, made before it declares anything: a skip needs a reason, and names
// a test that exists (a renamed test must not silently run again on an adapter that skips it).
describe('runStorageConformance', () => {
  const makeStorage = () => Promise.reject(new Error('never opened'))

  it('rejects a skip list that names an unknown test', () => {
    expect(() =>
      runStorageConformance({
        name: 'fake',
        makeStorage,
        skip: [{ reason: 'not supported', tests: ['claim takes everything twice'] }],
      }),
    ).toThrow('fake: the skip list names an unknown conformance test "claim takes everything twice"')
  })

  it('rejects a skip without a reason', () => {
    expect(() =>
      runStorageConformance({
        name: 'fake',
        makeStorage,
        skip: [{ reason: ' ', tests: ['cancel of a queued execution'] }],
      }),
    ).toThrow('fake: every skip needs a reason')
  })
})
