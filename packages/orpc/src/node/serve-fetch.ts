import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * Serves a `Request → Response` handler (a serverless route) from a Node HTTP server, for
 * local development and tests. A client that goes away aborts `request.signal`, so handlers
 * see cancelled calls the way a serverless platform shows them.
 */
export async function serveFetch(
  handler: (request: Request) => Promise<Response>,
  options: {
    port?: number
    host?: string
    /** Larger request bodies are answered 413 without calling the handler. @default 1 MiB + 64 KiB */
    maxBodyBytes?: number
  } = {},
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024 + 64 * 1024
  const server = createServer((req, res) => {
    void respond(handler, req, res, maxBodyBytes)
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    server,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

async function respond(
  handler: (request: Request) => Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
) {
  const controller = new AbortController()
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new Error('the client closed the connection'))
  })
  try {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > maxBodyBytes) {
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' })
        res.end(`request body above ${maxBodyBytes} bytes`)
        return
      }
      chunks.push(chunk as Buffer)
    }
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v)
      else if (value !== undefined) headers.set(name, value)
    }
    const method = req.method ?? 'GET'
    const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
      method,
      headers,
      ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
      signal: controller.signal,
    })
    const response = await handler(request)
    const outgoing: Record<string, string | string[]> = Object.fromEntries(response.headers)
    const cookies = response.headers.getSetCookie()
    if (cookies.length > 0) outgoing['set-cookie'] = cookies // one header each, not merged
    res.writeHead(response.status, outgoing)
    if (response.body) for await (const chunk of response.body) res.write(chunk)
    res.end()
  } catch (error) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
    res.end(controller.signal.aborted ? undefined : `internal error: ${String(error)}`)
  }
}
