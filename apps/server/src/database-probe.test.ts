import { describe, expect, it } from 'vitest'
import { StorageUnavailableError } from '@ratchet/core'
import { DatabaseProbe } from './database-probe'

describe('DatabaseProbe', () => {
  it('pings once for concurrent checks and reuses the answer for cacheMs', async () => {
    let pings = 0
    const probe = new DatabaseProbe({ ping: () => Promise.resolve(pings++), cacheMs: 60_000 })
    expect(await Promise.all([probe.check(), probe.check(), probe.check()])).toEqual([
      undefined,
      undefined,
      undefined,
    ])
    expect(await probe.check()).toBeUndefined()
    expect(pings).toBe(1)
  })

  it("says why the database is unreachable, with the driver's reason, and pings again once the answer is stale", async () => {
    let up = false
    const probe = new DatabaseProbe({
      ping: () =>
        up
          ? Promise.resolve()
          : Promise.reject(
              new StorageUnavailableError(undefined, {
                cause: new Error('connect ECONNREFUSED 127.0.0.1:5432'),
              }),
            ),
      cacheMs: 0,
    })
    expect(await probe.check()).toBe('the database is unreachable: connect ECONNREFUSED 127.0.0.1:5432')
    up = true
    expect(await probe.check()).toBeUndefined()
  })

  it('counts a ping slower than timeoutMs as unreachable', async () => {
    const probe = new DatabaseProbe({ ping: () => new Promise(() => {}), timeoutMs: 20, cacheMs: 0 })
    expect(await probe.check()).toBe('the database is unreachable: no answer within 20 ms')
  })
})
