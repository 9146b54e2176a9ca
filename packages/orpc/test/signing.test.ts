/**
 * Signed calls: the app side accepts exactly the calls Ratchet signed with its secret, for
 * the procedure they target, within five minutes; everything else is a 401 and the
 * procedure never runs. Requests are made by the real app link and replayed or altered.
 */
import { createHmac } from 'node:crypto'
import { os, type RouterClient } from '@orpc/server'
import { RPCHandler } from '@orpc/server/fetch'
import { beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createAppClient, HEADERS, sign, type RatchetCallContext } from '@ratchet/orpc'
import {
  RatchetSignatureError,
  createRatchetFetchHandler,
  ratchetMiddleware,
  verifyRatchetRequest,
  type RatchetAppContext,
} from '@ratchet/orpc/app'
import { appRouter, calls, type AppRouter } from './app-router'

const SECRET = 'app-secret-0123456789abcdef0123456789'
const OTHER = 'another-secret-0123456789abcdef012345'
const handler = createRatchetFetchHandler(appRouter, { secret: SECRET })
const meta = { executionId: '0198f0c4-8d2b-7000-8000-000000000001', attempt: 1, idempotencyKey: 'ratchet:x' }

/** Calls `echo.say` through a real app link; returns the signed request it sent. */
async function signedCall(secret = SECRET): Promise<{ request: Request; response: Response }> {
  let sent: Request | undefined
  let response: Response | undefined
  const app = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
    url: 'http://app.test/rpc',
    secret,
    fetch: async (request) => {
      sent = request.clone()
      response = await handler(request)
      return response.clone()
    },
  })
  await app.echo.say({ text: 'hi' }, { context: { ratchet: { ...meta } } }).catch(() => undefined)
  return { request: sent!, response: response! }
}

function withBody(request: Request, body: string, headers = new Headers(request.headers)): Request {
  return new Request(request.url, { method: request.method, headers, body })
}

let before: number
beforeEach(() => {
  before = calls.length
})

describe('signed calls', () => {
  it('a valid call runs the procedure, with the execution in its context', async () => {
    const { response } = await signedCall()
    expect(response.status).toBe(200)
    expect(calls.slice(before)).toEqual([{ procedure: 'echo.say', ...meta }])
  })

  it('a tampered body is refused and the procedure never runs', async () => {
    const { request } = await signedCall()
    const body = (await request.text()).replace('hi', 'HI')
    const response = await handler(withBody(request, body))
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ reason: 'BAD_SIGNATURE' })
    expect(calls.length).toBe(before + 1) // only the original call ran
  })

  it('a call signed with another secret is refused', async () => {
    const { response } = await signedCall(OTHER)
    expect(response.status).toBe(401)
    expect(calls.length).toBe(before)
  })

  it('a replay older than five minutes is refused, even with a valid signature', async () => {
    const { request } = await signedCall()
    const body = await request.text()
    const old = Date.now() - 5 * 60_000 - 1_000
    const headers = new Headers(request.headers)
    headers.set(HEADERS.timestamp, String(old))
    headers.set(HEADERS.signature, await sign(SECRET, { ...meta, procedure: 'echo.say' }, old, body))
    const response = await handler(withBody(request, body, headers))
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ reason: 'EXPIRED_SIGNATURE' })
    expect(calls.length).toBe(before + 1)
  })

  it('an unsigned call, or one signed for another procedure, is refused', async () => {
    const unsigned = await handler(
      new Request('http://app.test/rpc/echo/say', { method: 'POST', body: '{"json":{"text":"hi"}}' }),
    )
    expect(unsigned.status).toBe(401)
    expect(await unsigned.json()).toMatchObject({ reason: 'MISSING_SIGNATURE' })

    const { request } = await signedCall()
    const moved = new Request('http://app.test/rpc/slow/hang', {
      method: 'POST',
      headers: request.headers,
      body: await request.text(),
    })
    const response = await handler(moved)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ reason: 'WRONG_PROCEDURE' })
    expect(calls.length).toBe(before + 1)
  })

  it('verifyRatchetRequest accepts any of several secrets (rotation) and says what is wrong otherwise', async () => {
    const { request } = await signedCall()
    await expect(verifyRatchetRequest(request.clone(), { secret: [OTHER, SECRET] })).resolves.toMatchObject(
      meta,
    )
    await expect(verifyRatchetRequest(request.clone(), { secret: OTHER })).rejects.toBeInstanceOf(
      RatchetSignatureError,
    )
    await expect(
      verifyRatchetRequest(request.clone(), { secret: SECRET, now: Date.now() + 10 * 60_000 }),
    ).rejects.toMatchObject({ code: 'EXPIRED_SIGNATURE', status: 401 })
  })
})

describe('what the signature covers', () => {
  it.each([
    [HEADERS.timestamp, (v: string) => String(Number(v) + 1)],
    [HEADERS.executionId, () => '0198f0c4-8d2b-7000-8000-000000000002'],
    [HEADERS.attempt, () => '2'],
    [HEADERS.idempotencyKey, () => 'ratchet:other'],
    [HEADERS.procedure, () => 'echo.shout'],
  ])('changing %s without re-signing is refused', async (header, change) => {
    const { request } = await signedCall()
    const headers = new Headers(request.headers)
    headers.set(header, change(headers.get(header)!))
    const response = await handler(withBody(request, await request.text(), headers))
    expect(response.status).toBe(401)
    expect(calls.length).toBe(before + 1)
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

  it('procedure names that need percent-encoding in the URL verify', async () => {
    const app = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
      url: 'http://app.test/rpc',
      secret: SECRET,
      fetch: (request) => handler(request),
    })
    expect(await app.misc['send mail']({}, { context: { ratchet: { ...meta } } })).toEqual({ ok: true })
    expect(calls.at(-1)).toMatchObject({ procedure: 'misc.send mail' })
  })
})

describe('ratchetMiddleware (an app using its own oRPC handler)', () => {
  const ran: string[] = []
  const base = os.$context<RatchetAppContext>()
  const router = {
    echo: {
      say: base
        .use(ratchetMiddleware({ secret: SECRET }))
        .input(z.object({ text: z.string() }))
        .handler(({ input, context }) => {
          ran.push(input.text)
          return {
            said: input.text,
            executionId: context.ratchet.executionId,
            attempt: 1,
            idempotencyKey: '',
          }
        }),
    },
  }
  const rpc = new RPCHandler(router)
  const serve = async (request: Request) =>
    (await rpc.handle(request, { prefix: '/rpc', context: { request: request.clone() } })).response ??
    new Response(null, { status: 404 })

  it('runs signed calls with the execution in context, refuses unsigned and tampered ones', async () => {
    let signed: Request | undefined
    const app = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
      url: 'http://app.test/rpc',
      secret: SECRET,
      fetch: async (request) => {
        signed = request.clone()
        return serve(request)
      },
    })
    expect(
      await app.echo.say({ text: 'via middleware' }, { context: { ratchet: { ...meta } } }),
    ).toMatchObject({
      said: 'via middleware',
      executionId: meta.executionId,
    })
    const unsigned = await serve(
      new Request('http://app.test/rpc/echo/say', { method: 'POST', body: '{"json":{"text":"sneaky"}}' }),
    )
    expect(unsigned.status).toBe(401)
    const tampered = await serve(withBody(signed!, (await signed!.text()).replace('via', 'VIA')))
    expect(tampered.status).toBe(401)
    expect(ran).toEqual(['via middleware'])
  })
})
