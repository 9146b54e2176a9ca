import { ORPCError, os } from '@orpc/server'
import {
  verifyRatchetRequest,
  RatchetSignatureError,
  type RatchetRequestInfo,
  type VerifyOptions,
} from './verify'

/**
 * The context the middleware needs and adds. `request` must be an unread copy of the
 * incoming request (`request.clone()` taken before your handler reads it): the signature
 * covers the exact body bytes, and the handler consumes the original.
 */
export interface RatchetAppContext {
  request?: Request
  ratchet?: RatchetRequestInfo
}

/**
 * An oRPC middleware for procedures Ratchet calls: verifies the call's signature (for this
 * procedure's path) from `context.request`, and puts the execution id, attempt and
 * idempotency key in `context.ratchet`. Unsigned, tampered, wrong-secret and replayed calls
 * are rejected with UNAUTHORIZED before the procedure runs. A call already verified by
 * `createRatchetFetchHandler` is not verified twice.
 */
export function ratchetMiddleware(options: Omit<VerifyOptions, 'procedure' | 'now'>) {
  return os.$context<RatchetAppContext>().middleware(async ({ context, path, next }) => {
    const procedure = path.join('.')
    let info = context.ratchet
    if (!info || info.procedure !== procedure) {
      if (!context.request) {
        throw new ORPCError('UNAUTHORIZED', {
          status: 401,
          message: 'ratchetMiddleware needs the incoming Request in context.request',
        })
      }
      if (context.request.bodyUsed) {
        throw new ORPCError('INTERNAL_SERVER_ERROR', {
          message:
            'ratchetMiddleware: context.request was already read; pass request.clone() taken before handling it',
        })
      }
      try {
        info = await verifyRatchetRequest(context.request, { ...options, procedure })
      } catch (error) {
        if (error instanceof RatchetSignatureError)
          throw new ORPCError('UNAUTHORIZED', {
            status: 401,
            message: error.message,
            data: { reason: error.code },
          })
        throw error
      }
    }
    return next({ context: { ratchet: info } })
  })
}
