/** serveFetch: a fetch handler behind a real Node HTTP server. */
import { afterEach, describe, expect, it } from 'vitest'
import { serveFetch } from '@ratchet/orpc/node'

const servers: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

describe('serveFetch', () => {
  it('passes method, headers and body through, and keeps several Set-Cookie headers apart', async () => {
    const served = await serveFetch(async (request) => {
      const headers = new Headers({ 'x-echo': request.headers.get('x-in') ?? '' })
      headers.append('set-cookie', 'a=1')
      headers.append('set-cookie', 'b=2')
      return new Response(`${request.method} ${await request.text()}`, { headers })
    })
    servers.push(served)
    const response = await fetch(served.url, { method: 'POST', headers: { 'x-in': 'hi' }, body: 'payload' })
    expect(await response.text()).toBe('POST payload')
    expect(response.headers.get('x-echo')).toBe('hi')
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
  })

  it('answers 413 to a body above maxBodyBytes without calling the handler', async () => {
    let called = false
    const served = await serveFetch(
      () => {
        called = true
        return Promise.resolve(new Response('ok'))
      },
      { maxBodyBytes: 10 },
    )
    servers.push(served)
    const response = await fetch(served.url, { method: 'POST', body: 'x'.repeat(100) })
    expect(response.status).toBe(413)
    expect(called).toBe(false)
  })
})
