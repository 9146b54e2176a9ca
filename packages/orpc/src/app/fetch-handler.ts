import { RPCHandler } from '@orpc/server/fetch'
import { ResponseHeadersPlugin } from '@orpc/server/plugins'
import type { AnyRouter } from '@orpc/server'
import {
  RatchetSignatureError,
  verifyRatchetRequest,
  type RatchetRequestInfo,
  type VerifyOptions,
} from './verify'

export interface RatchetFetchHandlerOptions extends Omit<VerifyOptions, 'procedure' | 'now'> {
  /** Where the router is mounted. @default '/rpc' */
  prefix?: `/${string}`
}

/** The context procedures served by the handler get. */
export interface RatchetHandlerContext {
  request: Request
  ratchet: RatchetRequestInfo
  /** Set response headers, e.g. `Retry-After` with a 429 or 503. */
  resHeaders?: Headers
}

/**
 * A `Request → Response` handler (the shape of a serverless route or an edge function) that
 * serves `router` to Ratchet only: every call must be signed (see `verifyRatchetRequest`)
 * for the procedure its URL routes to, or it is answered 401 and nothing runs. Procedures
 * find the execution id, attempt and idempotency key in `context.ratchet`, and may set
 * response headers through `context.resHeaders`.
 */
export function createRatchetFetchHandler(
  router: AnyRouter,
  options: RatchetFetchHandlerOptions,
): (request: Request) => Promise<Response> {
  const prefix = options.prefix ?? '/rpc'
  const handler = new RPCHandler(router, { plugins: [new ResponseHeadersPlugin()] })
  return async (request) => {
    const procedure = procedureOf(new URL(request.url).pathname, prefix)
    let ratchet: RatchetRequestInfo
    try {
      ratchet = await verifyRatchetRequest(request, { ...options, procedure })
    } catch (error) {
      if (!(error instanceof RatchetSignatureError)) throw error
      return Response.json(
        { code: 'UNAUTHORIZED', reason: error.code, message: error.message },
        { status: 401 },
      )
    }
    const context: RatchetHandlerContext = { request, ratchet }
    const { matched, response } = await handler.handle(request, { prefix, context })
    return matched
      ? response
      : Response.json({ code: 'NOT_FOUND', message: `no procedure ${procedure}` }, { status: 404 })
  }
}

/**
 * The procedure path a URL routes to, as oRPC's RPC matcher reads it: the segments after the
 * prefix, percent-decoded, joined by dots (a trailing slash ignored). '' when outside the prefix.
 */
export function procedureOf(pathname: string, prefix: string): string {
  if (!pathname.startsWith(`${prefix}/`)) return ''
  const segments = pathname
    .slice(prefix.length + 1)
    .replace(/\/+$/, '')
    .split('/')
  try {
    return segments.map((segment) => decodeURIComponent(segment)).join('.')
  } catch {
    return '' // malformed escapes: matches no signed procedure
  }
}
