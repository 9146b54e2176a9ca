/**
 * Signed calls over real HTTP: the app side accepts exactly the calls Ratchet signed with its
 * secret, for the procedure they target, within five minutes; everything else is a 401 and
 * the procedure never runs. The app is served on an ephemeral port; requests are made by the
 * real app link, then sent as they were or altered, with `fetch` over the socket.
 */
import { createHmac } from 'node:crypto'
import { os, type RouterClient } from '@orpc/server'
import { RPCHandler } from '@orpc/server/fetch'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createAppClient, HEADERS, sign, type RatchetCallContext } from '@ratchet/orpc'
import {
  RatchetSignatureError,
  createRatchetFetchHandler,
  ratchetMiddleware,
  verifyRatchetRequest,
  type RatchetAppContext,
} from '@ratchet/orpc/app'
import { serveFetch } from '@ratchet/orpc/node'
import { appRouter, calls, type AppRouter } from './app-router'

const SECRET = 'app-secret-0123456789abcdef0123456789'
const OTHER = 'another-secret-0123456789abcdef012345'
const meta = { executionId: '0198f0c4-8d2b-7000-8000-000000000001', attempt: 1, idempotencyKey: 'ratchet:x' }
type App = RouterClient<AppRouter, RatchetCallContext>

/** A signed call as sent on the wire, kept to be sent (as it was, or altered) later. */
interface Captured {
  url: string
  headers: Headers
  body: string
}

class CapturedError extends Error {}

/**
 * Has the real app link sign a call of `echo.say` for `baseUrl`, and keeps the request
 * instead of sending it: nothing reaches the app.
 */
async function capture(baseUrl: string, secret = SECRET, text = 'hi'): Promise<Captured> {
  let captured: Captured | undefined
  const app = createAppClient<App>({
    url: `${baseUrl}/rpc`,
    secret,
    fetch: async (request) => {
      captured = { url: request.url, headers: new Headers(request.headers), body: await request.text() }
      throw new CapturedError('captured, not sent')
    },
  })
  await expect(app.echo.say({ text }, { context: { ratchet: { ...meta } } })).rejects.toThrow(
    'captured, not sent',
  )
  return captured!
}

/** Sends a captured call over HTTP, with any part replaced. */
function send(call: Captured, change: Partial<Captured> = {}): Promise<Response> {
  const { url, headers, body } = { ...call, ...change }
  return fetch(url, { method: 'POST', headers, body })
}

/** `call` with its timestamp moved to `at` and re-signed with the right secret: a replay. */
async function replayedAt(call: Captured, at: number): Promise<Captured> {
  const headers = new Headers(call.headers)
  headers.set(HEADERS.timestamp, String(at))
  headers.set(HEADERS.signature, await sign(SECRET, { ...meta, procedure: 'echo.say' }, at, call.body))
  return { ...call, headers }
}

const fiveMinutesAgo = () => Date.now() - 5 * 60_000 - 1_000

let before: number
beforeEach(() => {
  before = calls.length
})

describe('signed calls to createRatchetFetchHandler', () => {
  let app: Awaited<ReturnType<typeof serveFetch>>
  beforeAll(async () => {
    app = await serveFetch(createRatchetFetchHandler(appRouter, { secret: SECRET }))
  })
  afterAll(async () => {
    await app.close()
  })

  /** `altered` is refused with `reason` and runs nothing; the call it was made from still runs. */
  async function expectRefused(original: Captured, altered: Captured, reason: string) {
    const response = await send(altered)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ code: 'UNAUTHORIZED', reason })
    expect(calls.length).toBe(before)
    // The control: the unaltered call is valid, so the alteration alone was refused.
    expect((await send(original)).status).toBe(200)
    expect(calls.slice(before)).toEqual([{ procedure: 'echo.say', ...meta }])
  }

  it('a valid call runs the procedure, with the execution in its context', async () => {
    const client = createAppClient<App>({ url: `${app.url}/rpc`, secret: SECRET })
    expect(await client.echo.say({ text: 'hi' }, { context: { ratchet: { ...meta } } })).toEqual({
      said: 'hi',
      ...meta,
    })
    expect(calls.slice(before)).toEqual([{ procedure: 'echo.say', ...meta }])
  })

  it('a tampered body is refused and the procedure never runs', async () => {
    const call = await capture(app.url)
    await expectRefused(call, { ...call, body: call.body.replace('hi', 'HI') }, 'BAD_SIGNATURE')
  })

  it('a call signed with another secret is refused and the procedure never runs', async () => {
    const response = await send(await capture(app.url, OTHER))
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ reason: 'BAD_SIGNATURE' })
    expect(calls.length).toBe(before)
  })

  it('a replay older than five minutes is refused, even with a valid signature', async () => {
    const call = await capture(app.url)
    await expectRefused(call, await replayedAt(call, fiveMinutesAgo()), 'EXPIRED_SIGNATURE')
  })

  it('an unsigned call is refused and the procedure never runs', async () => {
    const response = await fetch(`${app.url}/rpc/echo/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"json":{"text":"hi"}}',
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ reason: 'MISSING_SIGNATURE' })
    expect(calls.length).toBe(before)
  })

  it('a call signed for one procedure and sent to another is refused', async () => {
    const call = await capture(app.url)
    await expectRefused(
      call,
      { ...call, url: call.url.replace('/rpc/echo/say', '/rpc/slow/hang') },
      'WRONG_PROCEDURE',
    )
  })

  it.each([
    [HEADERS.timestamp, (v: string) => String(Number(v) + 1)],
    [HEADERS.executionId, () => '0198f0c4-8d2b-7000-8000-000000000002'],
    [HEADERS.attempt, () => '2'],
    [HEADERS.idempotencyKey, () => 'ratchet:other'],
    [HEADERS.procedure, () => 'echo.shout'],
  ])('changing the signed %s without re-signing is refused', async (header, change) => {
    const call = await capture(app.url)
    const headers = new Headers(call.headers)
    headers.set(header, change(headers.get(header)!))
    await expectRefused(call, { ...call, headers }, 'BAD_SIGNATURE')
  })

  it('procedure names that need percent-encoding in the URL verify', async () => {
    const client = createAppClient<App>({ url: `${app.url}/rpc`, secret: SECRET })
    expect(await client.misc['send mail']({}, { context: { ratchet: { ...meta } } })).toEqual({ ok: true })
    expect(calls.slice(before)).toEqual([{ procedure: 'misc.send mail', ...meta }])
  })
})

describe('verifyRatchetRequest', () => {
  const request = (call: Captured) =>
    new Request(call.url, { method: 'POST', headers: call.headers, body: call.body })

  it('accepts any of several secrets (rotation) and says what is wrong otherwise', async () => {
    const call = await capture('http://app.test')
    await expect(verifyRatchetRequest(request(call), { secret: [OTHER, SECRET] })).resolves.toMatchObject({
      ...meta,
      procedure: 'echo.say',
    })
    await expect(verifyRatchetRequest(request(call), { secret: OTHER })).rejects.toBeInstanceOf(
      RatchetSignatureError,
    )
    await expect(
      verifyRatchetRequest(request(call), { secret: SECRET, now: Date.now() + 10 * 60_000 }),
    ).rejects.toMatchObject({ code: 'EXPIRED_SIGNATURE', status: 401 })
  })

  it('is the documented HMAC-SHA256 (a second implementation agrees)', async () => {
    const call = { ...meta, procedure: 'payments.charge' }
    const body = '{"json":{"amountCents":100}}'
    const expected = createHmac('sha256', SECRET)
      .update(
        [
          'ratchet-v1',
          '1700000000000',
          call.executionId,
          '1',
          call.idempotencyKey,
          call.procedure,
          body,
        ].join('\n'),
      )
      .digest('hex')
    expect(await sign(SECRET, call, 1_700_000_000_000, body)).toBe(expected)
  })
})

describe('ratchetMiddleware (an app serving its own oRPC RPCHandler)', () => {
  const ran: string[] = []
  const base = os.$context<RatchetAppContext>()
  const router = {
    echo: {
      say: base
        .use(ratchetMiddleware({ secret: SECRET }))
        .input(z.object({ text: z.string() }))
        .handler(({ input, context }) => {
          ran.push(input.text)
          const { executionId, attempt, idempotencyKey } = context.ratchet
          return { said: input.text, executionId, attempt, idempotencyKey }
        }),
    },
  }
  const rpc = new RPCHandler(router)
  let app: Awaited<ReturnType<typeof serveFetch>>
  beforeAll(async () => {
    app = await serveFetch(
      async (request) =>
        (await rpc.handle(request, { prefix: '/rpc', context: { request: request.clone() } })).response ??
        new Response(null, { status: 404 }),
    )
  })
  afterAll(async () => {
    await app.close()
  })
  beforeEach(() => {
    ran.length = 0
  })

  /** An oRPC UNAUTHORIZED error, with the middleware's reason, and nothing ran. */
  async function expectRefused(response: Response, reason: string) {
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({
      json: { code: 'UNAUTHORIZED', status: 401, data: { reason } },
    })
    expect(ran).toEqual([])
  }

  it('runs a signed call, with the execution in its context', async () => {
    const client = createAppClient<App>({ url: `${app.url}/rpc`, secret: SECRET })
    expect(await client.echo.say({ text: 'via middleware' }, { context: { ratchet: { ...meta } } })).toEqual({
      said: 'via middleware',
      ...meta,
    })
    expect(ran).toEqual(['via middleware'])
  })

  it('refuses an unsigned call', async () => {
    const response = await fetch(`${app.url}/rpc/echo/say`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"json":{"text":"sneaky"}}',
    })
    await expectRefused(response, 'MISSING_SIGNATURE')
  })

  it('refuses a tampered body', async () => {
    const call = await capture(app.url, SECRET, 'via middleware')
    await expectRefused(await send(call, { body: call.body.replace('via', 'VIA') }), 'BAD_SIGNATURE')
    expect((await send(call)).status).toBe(200) // the unaltered call is valid
  })

  it('refuses a call signed with another secret', async () => {
    await expectRefused(await send(await capture(app.url, OTHER)), 'BAD_SIGNATURE')
  })

  it('refuses a replay older than five minutes, even with a valid signature', async () => {
    const call = await capture(app.url)
    await expectRefused(await send(await replayedAt(call, fiveMinutesAgo())), 'EXPIRED_SIGNATURE')
    expect((await send(call)).status).toBe(200) // the same call, signed now, is valid
  })
})
