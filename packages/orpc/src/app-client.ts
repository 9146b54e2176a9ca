import { createORPCClient, type ClientContext } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import { context, propagation, type TextMapSetter } from '@opentelemetry/api'
import { checkSecret, signedHeaders, type CallMeta } from './signing'

const HEADERS_SETTER: TextMapSetter<Headers> = { set: (headers, key, value) => headers.set(key, value) }

/** What the link learned from the app's response: the error mapping reads it. */
export interface CallResponse {
  status: number
  /** From `Retry-After` (seconds or an HTTP date), when the app sent one. */
  retryAfterMs: number | undefined
}

/** The per-call context a procedure task gives the app client. */
export interface RatchetCallContext extends ClientContext {
  ratchet?: Omit<CallMeta, 'procedure'> & {
    /** Set by the link: the procedure path called. */
    procedure?: string
    /** Set by the link once the app answered. */
    response?: CallResponse
  }
}

export interface AppClientOptions {
  /** The web app's oRPC endpoint, e.g. `https://shop.example.com/rpc`. */
  url: string
  /** The secret shared with the app (at least 32 characters); the app verifies with it. */
  secret: string
  /** A fetch implementation (tests, proxies, custom agents). @default globalThis.fetch */
  fetch?: (request: Request, init?: RequestInit) => Promise<Response>
  /** Extra headers on every call. */
  headers?: Record<string, string>
}

/**
 * An oRPC link to a web app that signs every call (see signing.ts) with the execution id,
 * attempt and idempotency key of the procedure task making it, and with the OpenTelemetry
 * trace context of the attempt (`traceparent`) when an SDK is registered. Calls made outside a
 * procedure task are refused: they would carry no execution to sign for.
 */
export function createAppLink(options: AppClientOptions): RPCLink<RatchetCallContext> {
  const secret = checkSecret(options.secret, 'createAppLink')
  const doFetch = options.fetch ?? ((request: Request, init?: RequestInit) => globalThis.fetch(request, init))
  return new RPCLink<RatchetCallContext>({
    url: options.url,
    headers: options.headers ?? {},
    fetch: async (request, init, callOptions, path) => {
      const meta = callOptions.context.ratchet
      if (!meta) {
        throw new TypeError(
          `the app client called ${path.join('.')} outside a procedure task: there is no execution to sign for`,
        )
      }
      const body = request.method === 'GET' || request.method === 'HEAD' ? '' : await request.clone().text()
      const headers = new Headers(request.headers)
      meta.procedure = path.join('.')
      const signed = await signedHeaders(
        secret,
        {
          executionId: meta.executionId,
          attempt: meta.attempt,
          idempotencyKey: meta.idempotencyKey,
          procedure: meta.procedure,
        },
        body,
        Date.now(),
      )
      for (const [name, value] of Object.entries(signed)) headers.set(name, value)
      // The trace context of the attempt (or step) making the call, e.g. `traceparent`, when
      // an OpenTelemetry SDK is registered; without one this sets nothing.
      propagation.inject(context.active(), headers, HEADERS_SETTER)
      // A redirect would carry the signed call elsewhere: it is not followed (see error-mapping.ts).
      const response = await doFetch(new Request(request, { headers, redirect: 'manual' }), init)
      meta.response = {
        status: response.status,
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), Date.now()),
      }
      return response
    },
  })
}

/**
 * A typed client of a web app's oRPC router for procedure tasks: pass the app router's
 * client type, e.g. `createAppClient<RouterClient<typeof router, RatchetCallContext>>(...)`
 * with `import type { router }` from the app (see {@link AppClient}).
 */
export function createAppClient<TClient>(options: AppClientOptions): TClient {
  return createORPCClient(createAppLink(options)) as TClient
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or invalid. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}
