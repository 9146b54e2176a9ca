import type { Context } from '@orpc/server'
import type { Readable } from 'node:stream'
import type { NodeHttpHandlerOptions, NodeHttpHandlerPlugin } from '@orpc/server/node'
import type { StandardHandlerOptions } from '@orpc/server/standard'
import { apiErrors } from './error-mapping'

/** How long the rest of a refused body is read (and dropped) before the connection is closed. */
const LINGER_MS = 10_000

/**
 * Refuses request bodies above `limitBytes` with PAYLOAD_TOO_LARGE (413, `data.field`
 * 'body'), in the encoding of the handler it is plugged into (RPC or REST). Replaces oRPC's
 * BodyLimitPlugin, which closes the connection at once: a client still sending its body (any
 * body far above the limit) then sees a reset (EPIPE) instead of the 413.
 *
 * - A body whose Content-Length is above the limit (what `fetch` and the Ratchet client send) is
 *   refused before it is read. Node then reads the rest and drops it, so the client finishes
 *   sending and reads the 413 on a connection that stays usable; a client that is still
 *   sending after LINGER_MS is cut off.
 * - A body without Content-Length (chunked) is counted as it arrives and refused once it passes
 *   the limit; reading stops there, and Node closes the connection (the client may see a reset).
 */
export class RequestBodyLimit<T extends Context> implements NodeHttpHandlerPlugin<T> {
  constructor(private readonly limitBytes: number) {}

  init(options: StandardHandlerOptions<T>): void {
    options.interceptors ??= []
    // After the handler's own interceptors (the API key check comes first).
    options.interceptors.push((interceptor) => {
      const declared = Number(interceptor.request.headers['content-length'])
      if (declared > this.limitBytes) throw this.tooLarge(declared)
      return interceptor.next()
    })
  }

  initRuntimeAdapter(options: NodeHttpHandlerOptions<T>): void {
    options.adapterInterceptors ??= []
    options.adapterInterceptors.push(async (interceptor) => {
      const { request, response } = interceptor
      const originalEmit = request.emit.bind(request)
      let receivedBytes = 0
      request.emit = (event: string | symbol, ...args: unknown[]): boolean => {
        if (event === 'data') {
          receivedBytes += (args[0] as Buffer).length
          if (receivedBytes > this.limitBytes) {
            // Thrown into the read of the body, which fails decoding with this error.
            if (!response.headersSent) response.setHeader('connection', 'close')
            throw this.tooLarge(receivedBytes)
          }
        }
        return originalEmit(event, ...args)
      }
      try {
        return await interceptor.next()
      } finally {
        request.emit = originalEmit
        // A request refused before its body was read (413, 401): let the client finish sending.
        if (!request.complete) linger(request)
      }
    })
  }

  private tooLarge(sizeBytes: number) {
    return apiErrors.PAYLOAD_TOO_LARGE({
      message: `the request body is ${sizeBytes} bytes, above the limit of ${this.limitBytes} bytes`,
      data: { field: 'body', sizeBytes, limitBytes: this.limitBytes },
    })
  }
}

/** Reads and drops what is left of a body that was not read, for at most LINGER_MS. */
function linger(request: Readable & { complete: boolean; socket: { destroy(): void } }): void {
  if (request.destroyed) return
  const timer = setTimeout(() => request.socket.destroy(), LINGER_MS)
  timer.unref()
  request.once('end', () => clearTimeout(timer))
  request.once('close', () => clearTimeout(timer))
  request.resume()
}
