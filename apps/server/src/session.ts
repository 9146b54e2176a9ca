import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { silentLogger, type Logger } from '@ratchet/core'
import { authenticate, type ApiKey } from './auth'

/**
 * Browser sessions for the dashboard: a login form exchanges an API key for a signed,
 * stateless cookie, so the key itself never sits in the page's JavaScript.
 *
 * Cookie value: `<keyName>.<expiresAtMs>.<nonce>.<mac>`, mac = HMAC-SHA256(key secret,
 * `name.expires.nonce`) in base64url. Nothing is stored on the server: a cookie works on every
 * replica with the same keys, and dies when its key is removed or its secret changes.
 *
 * CSRF: the cookie is `SameSite=Strict` and `HttpOnly`; on top of that every cookie-authenticated
 * request that is not GET/HEAD must carry `X-Ratchet-CSRF: <token>`, token = HMAC(key secret,
 * 'csrf.' + cookie value), which a page reads from `GET /auth/session` (same-origin only).
 * Requests with `Authorization: Bearer` are not ambient credentials and need no token.
 */

export const SESSION_COOKIE = 'ratchet_session'
export const CSRF_HEADER = 'x-ratchet-csrf'
/** Session lifetime. @default 8 hours */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000
/** Largest login body read (a key is far smaller). */
const MAX_LOGIN_BODY = 8 * 1024

export interface Session {
  apiKeyName: string
  expiresAt: Date
  csrfToken: string
}

const mac = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('base64url')

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** A new signed cookie value for `key`, valid until `now + ttlMs`. */
export function signSession(key: ApiKey, now: number, ttlMs = SESSION_TTL_MS): string {
  const payload = `${key.name}.${now + ttlMs}.${randomBytes(12).toString('base64url')}`
  return `${payload}.${mac(key.secret, payload)}`
}

/**
 * The session a cookie value stands for, or undefined when it is malformed, expired, signed by
 * no current key, or its key was removed. (Key names may contain dots: the value is split from
 * the right.)
 */
export function verifySession(keys: readonly ApiKey[], value: string, now: number): Session | undefined {
  const parts = value.split('.')
  if (parts.length < 4) return undefined
  const signature = parts.pop()!
  const nonce = parts.pop()!
  const expires = Number(parts.pop())
  const name = parts.join('.')
  const key = keys.find((k) => k.name === name)
  if (!key || !Number.isSafeInteger(expires) || expires <= now || !nonce) return undefined
  if (!safeEqual(signature, mac(key.secret, `${name}.${expires}.${nonce}`))) return undefined
  return { apiKeyName: name, expiresAt: new Date(expires), csrfToken: mac(key.secret, `csrf.${value}`) }
}

/** The value of cookie `name` in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** How a request to `/rpc` or `/api` authenticated, or why it did not. */
export type RequestAuth =
  | { ok: true; apiKeyName: string; via: 'bearer' | 'session' }
  | { ok: false; reason: 'UNAUTHORIZED' | 'CSRF_FAILED' }

export interface SessionAuthOptions {
  apiKeys: readonly ApiKey[]
  /** Add `Secure` to the cookie (serve the dashboard over https). @default false */
  secureCookies?: boolean
  /** @default Date.now */
  now?: () => number
  /** @default silent */
  logger?: Logger
}

/**
 * The `/auth/*` routes and the request check shared by `/rpc`, `/api` and the OpenAPI spec.
 * Without API keys there is nothing to log in to: `/auth/session` says so (`authRequired: false`).
 */
export class SessionAuth {
  readonly #keys: readonly ApiKey[]
  readonly #secure: boolean
  readonly #now: () => number
  readonly #logger: Logger

  constructor(options: SessionAuthOptions) {
    this.#keys = options.apiKeys
    this.#secure = options.secureCookies ?? false
    this.#now = options.now ?? Date.now
    this.#logger = options.logger ?? silentLogger
  }

  /**
   * Bearer key first; else the session cookie, with the CSRF header on anything but GET/HEAD.
   * A request with a Bearer header is judged by it alone (a wrong key is not rescued by a cookie).
   */
  authenticate(headers: IncomingMessage['headers'], method: string): RequestAuth {
    if (headers.authorization !== undefined) {
      const name = authenticate(this.#keys, headers.authorization)
      return name === undefined
        ? { ok: false, reason: 'UNAUTHORIZED' }
        : { ok: true, apiKeyName: name, via: 'bearer' }
    }
    const session = this.session(headers.cookie)
    if (!session) return { ok: false, reason: 'UNAUTHORIZED' }
    if (method !== 'GET' && method !== 'HEAD') {
      const header = headers[CSRF_HEADER]
      if (typeof header !== 'string' || !safeEqual(header, session.csrfToken)) {
        this.#logger.debug(
          { method, apiKeyName: session.apiKeyName },
          'request rejected: missing or wrong CSRF token',
        )
        return { ok: false, reason: 'CSRF_FAILED' }
      }
    }
    return { ok: true, apiKeyName: session.apiKeyName, via: 'session' }
  }

  /** The valid session of a Cookie header, if any. */
  session(cookieHeader: string | undefined): Session | undefined {
    const value = readCookie(cookieHeader, SESSION_COOKIE)
    return value === undefined ? undefined : verifySession(this.#keys, value, this.#now())
  }

  /** Serves `/auth/login`, `/auth/session` and `/auth/logout`; answers 404 for other `/auth` paths. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET'
    if (path === '/auth/session' && (method === 'GET' || method === 'HEAD')) {
      if (this.#keys.length === 0)
        return send(res, 200, { authRequired: false, apiKeyName: null, csrfToken: null, expiresAt: null })
      const session = this.session(req.headers.cookie)
      if (!session)
        return send(res, 401, { code: 'UNAUTHORIZED', message: 'not logged in', authRequired: true })
      return send(res, 200, { authRequired: true, ...session, expiresAt: session.expiresAt.toISOString() })
    }
    if (path === '/auth/login' && method === 'POST') return this.#login(req, res)
    if (path === '/auth/logout' && method === 'POST') {
      const session = this.session(req.headers.cookie)
      const header = req.headers[CSRF_HEADER]
      if (session && (typeof header !== 'string' || !safeEqual(header, session.csrfToken))) {
        this.#logger.debug({ path }, 'logout rejected: missing or wrong CSRF token')
        return send(res, 403, { code: 'CSRF_FAILED', message: `logout needs the ${CSRF_HEADER} header` })
      }
      res.setHeader('set-cookie', this.#cookie('', 0))
      res.writeHead(204).end()
      return
    }
    send(res, 404, { code: 'NOT_FOUND', message: `no route for ${method} ${path}` })
  }

  async #login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) {
      this.#logger.debug({ origin: req.headers.origin }, 'login rejected: cross-origin request')
      return send(res, 403, { code: 'CSRF_FAILED', message: 'cross-origin login refused' })
    }
    if (this.#keys.length === 0)
      return send(res, 400, {
        code: 'INVALID_INPUT',
        message: 'this server has no API keys (RATCHET_API_KEYS): no login is needed',
      })
    let apiKey: unknown
    try {
      const body = await readBody(req, MAX_LOGIN_BODY)
      const type = req.headers['content-type'] ?? ''
      apiKey = type.startsWith('application/x-www-form-urlencoded')
        ? new URLSearchParams(body).get('apiKey')
        : (JSON.parse(body) as { apiKey?: unknown } | null)?.apiKey
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      this.#logger.debug({ reason }, 'login body could not be decoded')
      return send(res, 400, {
        code: 'INVALID_INPUT',
        message: `the login body could not be decoded (${reason}); send JSON {"apiKey": "..."}`,
      })
    }
    if (typeof apiKey !== 'string' || apiKey === '') {
      this.#logger.debug({}, 'login without apiKey')
      return send(res, 400, {
        code: 'INVALID_INPUT',
        message: 'apiKey is required (a string)',
        data: { issues: [{ path: ['apiKey'], message: 'Required' }] },
      })
    }
    const key = this.#keys.find((k) => k.name === authenticate(this.#keys, `Bearer ${apiKey}`))
    if (!key) {
      this.#logger.warn({ remoteAddress: req.socket.remoteAddress }, 'login rejected: invalid API key')
      return send(res, 401, { code: 'UNAUTHORIZED', message: 'invalid API key' })
    }
    res.setHeader('set-cookie', this.#cookie(signSession(key, this.#now()), SESSION_TTL_MS / 1000))
    this.#logger.info({ apiKeyName: key.name }, 'dashboard login')
    res.writeHead(204).end()
  }

  #cookie(value: string, maxAgeS: number): string {
    return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${this.#secure ? '; Secure' : ''}`
  }
}

/** False when the request names an Origin whose host is not the one it was sent to. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    return false
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      // Past the limit the rest is drained unread, so the answer still reaches the client.
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
    })
    req.on('end', () => {
      if (size > limit) reject(new Error(`body larger than ${limit} bytes`))
      else resolve(Buffer.concat(chunks).toString('utf8'))
    })
    req.on('error', reject)
  })
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}
