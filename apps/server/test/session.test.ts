/**
 * Dashboard sessions over real HTTP: a login form exchanges an API key for an HttpOnly,
 * SameSite=Strict cookie; the cookie authenticates /api and /rpc, but a cookie-authenticated
 * write needs the CSRF token; Bearer requests are unchanged; logout clears the cookie.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { signSession, verifySession } from '../src/session'
import { tasks } from './fixtures/watch-tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'
import { captureLogger } from './log-capture'

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

async function login(url: string, apiKey: string) {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ apiKey }),
  })
  const setCookie = res.headers.get('set-cookie')
  const cookie = setCookie?.split(';')[0]
  return { res, setCookie, cookie }
}

async function session(url: string, cookie: string) {
  const res = await fetch(`${url}/auth/session`, { headers: { cookie } })
  return { res, body: (await res.json()) as { apiKeyName: string; csrfToken: string; expiresAt: string } }
}

const enqueueBody = JSON.stringify({ taskId: 'gate', input: {} })

describe('dashboard session auth', () => {
  it('logs in with a key: HttpOnly, SameSite=Strict cookie; a wrong key is a 401 with no cookie', async () => {
    const { logger, raw } = captureLogger()
    t = await startTestServer(tasks, { logger })
    const bad = await login(t.url, 'not-the-key-0123456789')
    expect(bad.res.status).toBe(401)
    expect(bad.setCookie).toBeNull()

    const good = await login(t.url, API_KEY)
    expect(good.res.status).toBe(204)
    expect(good.setCookie).toMatch(/^ratchet_session=test\.\d+\.[\w-]+\.[\w-]+; /)
    expect(good.setCookie).toContain('HttpOnly')
    expect(good.setCookie).toContain('SameSite=Strict')
    expect(good.setCookie).toContain('Path=/')
    expect(good.setCookie).toContain('Max-Age=28800')
    expect(good.setCookie).not.toContain('Secure')
    expect(raw()).not.toContain(API_KEY)

    const { res, body } = await session(t.url, good.cookie!)
    expect(res.status).toBe(200)
    expect(body.apiKeyName).toBe('test')
    expect(body.csrfToken).toMatch(/^[\w-]{43}$/)
    expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(Date.now() + 7 * 3600_000)
    expect((await fetch(`${t.url}/auth/session`)).status).toBe(401)
  })

  it('accepts a form-encoded login, refuses a cross-origin one and a login without apiKey', async () => {
    t = await startTestServer(tasks)
    const form = await fetch(`${t.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ apiKey: API_KEY }).toString(),
    })
    expect(form.status).toBe(204)
    const cross = await fetch(`${t.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ apiKey: API_KEY }),
    })
    expect(cross.status).toBe(403)
    expect(cross.headers.get('set-cookie')).toBeNull()
    const missing = await fetch(`${t.url}/auth/login`, { method: 'POST', body: '{}' })
    expect(missing.status).toBe(400)
    expect(((await missing.json()) as { message: string }).message).toContain('apiKey')
  })

  it('a cookie reads freely, but writes only with the CSRF header (403 otherwise, nothing written)', async () => {
    const { logger, lines } = captureLogger()
    t = await startTestServer(tasks, { logger })
    const { cookie } = await login(t.url, API_KEY)
    const { body } = await session(t.url, cookie!)
    const api = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })

    const list = await fetch(`${t.url}/api/executions`, { headers: { cookie: cookie! } })
    expect(list.status).toBe(200)

    const rest = await fetch(`${t.url}/api/executions`, {
      method: 'POST',
      headers: { cookie: cookie!, 'content-type': 'application/json' },
      body: enqueueBody,
    })
    expect(rest.status).toBe(403)
    expect(await rest.json()).toMatchObject({ code: 'CSRF_FAILED' })
    const rpc = await fetch(`${t.url}/rpc/executions/enqueue`, {
      method: 'POST',
      headers: { cookie: cookie!, 'content-type': 'application/json', 'x-ratchet-csrf': 'wrong' },
      body: JSON.stringify({ json: { taskId: 'gate', input: {} } }),
    })
    expect(rpc.status).toBe(403)
    expect((await api.executions.list({})).items).toHaveLength(0)
    expect(lines.some((l) => l.level === 20 && /CSRF/.test(String(l.msg)))).toBe(true)

    const ok = await fetch(`${t.url}/api/executions`, {
      method: 'POST',
      headers: { cookie: cookie!, 'content-type': 'application/json', 'x-ratchet-csrf': body.csrfToken },
      body: enqueueBody,
    })
    expect(ok.status).toBe(200)
    expect((await api.executions.list({})).items).toHaveLength(1)

    // Bearer requests need no CSRF token; a wrong Bearer key is not rescued by a valid cookie.
    const bearer = await fetch(`${t.url}/api/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: enqueueBody,
    })
    expect(bearer.status).toBe(200)
    const wrongBearer = await fetch(`${t.url}/api/executions`, {
      headers: { authorization: 'Bearer nope-nope-nope-nope', cookie: cookie! },
    })
    expect(wrongBearer.status).toBe(401)
    // The OpenAPI document is readable with the cookie too.
    expect((await fetch(`${t.url}/api/spec.json`, { headers: { cookie: cookie! } })).status).toBe(200)
  })

  it('a tampered cookie is a 401; logout needs the CSRF token and clears the cookie', async () => {
    t = await startTestServer(tasks)
    const { cookie } = await login(t.url, API_KEY)
    const tampered = cookie!.replace(/\.(\d+)\./, (_m, exp: string) => `.${Number(exp) + 1000}.`)
    expect((await fetch(`${t.url}/api/executions`, { headers: { cookie: tampered } })).status).toBe(401)

    const { body } = await session(t.url, cookie!)
    const noToken = await fetch(`${t.url}/auth/logout`, { method: 'POST', headers: { cookie: cookie! } })
    expect(noToken.status).toBe(403)
    const out = await fetch(`${t.url}/auth/logout`, {
      method: 'POST',
      headers: { cookie: cookie!, 'x-ratchet-csrf': body.csrfToken },
    })
    expect(out.status).toBe(204)
    expect(out.headers.get('set-cookie')).toMatch(/^ratchet_session=; .*Max-Age=0/)
  })

  it('marks the cookie Secure with secureCookies; without keys no login is needed', async () => {
    t = await startTestServer(tasks, { secureCookies: true })
    expect((await login(t.url, API_KEY)).setCookie).toContain('; Secure')
    await t.close()
    t = await startTestServer(tasks, { apiKeys: [] })
    const res = await fetch(`${t.url}/auth/session`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ authRequired: false })
  })
})

describe('session cookie values', () => {
  const key = { name: 'ops.team-1', secret: 'secret-0123456789abcdef' }
  it('verify until they expire, and die with their key (removed or its secret changed)', () => {
    const value = signSession(key, 1_000, 60_000)
    expect(verifySession([key], value, 2_000)).toMatchObject({ apiKeyName: 'ops.team-1' })
    expect(verifySession([key], value, 61_000)).toBeUndefined()
    expect(verifySession([], value, 2_000)).toBeUndefined()
    expect(verifySession([{ ...key, secret: 'another-secret-0123456' }], value, 2_000)).toBeUndefined()
    expect(verifySession([key], 'garbage', 2_000)).toBeUndefined()
    expect(verifySession([key], `${value}x`, 2_000)).toBeUndefined()
  })
})
