/**
 * A request body over the limit reaches a Node `fetch` client (undici) as a 413 it can read —
 * status and JSON body, a defined PAYLOAD_TOO_LARGE with its sizes — not a connection reset,
 * over RPC and REST, just above the limit and far above it. Against the server process, where
 * a server that closes the connection while the client still sends shows up as EPIPE.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killChildServers, startChildServer, type ChildServer } from './child-server'
import { API_KEY } from './helpers'

const PAYLOAD_LIMIT = 64 * 1024
/** The request body limit: the payload limit plus 64 KiB for the request's envelope. */
const BODY_LIMIT = PAYLOAD_LIMIT + 64 * 1024

let dir: string
let server: ChildServer
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-body-limit-'))
  server = await startChildServer({
    databaseFile: join(dir, 'ratchet.db'),
    tasksModule: join(import.meta.dirname, 'fixtures/tasks.ts'),
    env: { RATCHET_API_KEYS: `web:${API_KEY}`, RATCHET_MAX_PAYLOAD_BYTES: String(PAYLOAD_LIMIT) },
  })
})
afterAll(async () => {
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

/** A JSON body of exactly `bytes` bytes for `path`'s protocol. */
function bodyOf(path: string, bytes: number): string {
  const empty = path.startsWith('/rpc')
    ? JSON.stringify({ json: { taskId: 'blob', input: { data: '' } } })
    : JSON.stringify({ taskId: 'blob', input: { data: '' } })
  const text = empty.replace('"data":""', `"data":"${'x'.repeat(bytes - empty.length)}"`)
  expect(Buffer.byteLength(text)).toBe(bytes)
  return text
}

const post = (path: string, body: string, key = API_KEY) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body,
  })

/**
 * POSTs `body` in 16 KiB chunks with `Transfer-Encoding: chunked` (no Content-Length), and
 * resolves with the response (the server may close the connection while the rest is sent).
 */
function postChunked(path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${path}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (text += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      },
    )
    // An error after the response (the rest of the body refused) changes nothing.
    req.on('error', reject)
    for (let at = 0; at < body.length; at += 16 * 1024) req.write(body.slice(at, at + 16 * 1024))
    req.end()
  })
}

/** POSTs `body` (with its Content-Length) through `agent`; tells whether a kept-alive socket carried it. */
function postOn(
  agent: Agent,
  path: string,
  body: string,
): Promise<{ status: number; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${path}`,
      {
        agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${API_KEY}`,
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reusedSocket: req.reusedSocket }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** The error body of either protocol: RPC wraps it in `json`. */
async function errorOf(path: string, response: Response): Promise<Record<string, unknown>> {
  const body = (await response.json()) as Record<string, unknown>
  return path.startsWith('/rpc') ? (body.json as Record<string, unknown>) : body
}

describe.each(['/rpc/executions/enqueue', '/api/executions'])('a body over the limit on %s', (path) => {
  for (const [what, bytes] of [
    ['just above the limit', BODY_LIMIT + 1],
    ['far above it (8 MiB)', 8 * 1024 * 1024],
  ] as const) {
    it(`${what}: a readable 413 every time`, async () => {
      const body = bodyOf(path, bytes)
      for (let i = 0; i < 3; i++) {
        const response = await post(path, body)
        expect(response.status).toBe(413)
        expect(await errorOf(path, response)).toMatchObject({
          defined: true,
          code: 'PAYLOAD_TOO_LARGE',
          status: 413,
          data: { field: 'body', sizeBytes: bytes, limitBytes: BODY_LIMIT },
        })
      }
    })
  }

  it('at the limit it is read (and the input checked against the payload limit)', async () => {
    const response = await post(path, bodyOf(path, BODY_LIMIT))
    expect(response.status).toBe(413)
    expect(await errorOf(path, response)).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      data: { field: 'input' },
    })
  })

  it('sent chunked (no Content-Length): counted as it arrives and refused once past the limit', async () => {
    // Past the request limit but, as an input, far from the payload limit it would be checked
    // against if the body were read to its end.
    const bytes = BODY_LIMIT + 16 * 1024
    const response = await postChunked(path, bodyOf(path, bytes))
    expect(response.status).toBe(413)
    const error = path.startsWith('/rpc')
      ? (JSON.parse(response.body) as { json: Record<string, unknown> }).json
      : (JSON.parse(response.body) as Record<string, unknown>)
    expect(error).toMatchObject({
      defined: true,
      code: 'PAYLOAD_TOO_LARGE',
      data: { field: 'body', limitBytes: BODY_LIMIT },
    })
    const { sizeBytes } = (error as { data: { sizeBytes: number } }).data
    expect(sizeBytes).toBeGreaterThan(BODY_LIMIT)
    expect(sizeBytes).toBeLessThanOrEqual(bytes)
  })

  it('refused by its Content-Length: the connection stays usable for the next request', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const tooLarge = await postOn(agent, path, bodyOf(path, BODY_LIMIT + 1))
      expect([tooLarge.status, tooLarge.reusedSocket]).toEqual([413, false])
      const next = await postOn(agent, path, bodyOf(path, 200))
      expect([next.status, next.reusedSocket]).toEqual([200, true])
    } finally {
      agent.destroy()
    }
  })

  it('without a valid key: a readable 401 before the body is read', async () => {
    const response = await post(path, bodyOf(path, 8 * 1024 * 1024), 'wrong-key-0123456789abcdef')
    expect(response.status).toBe(401)
    expect(await errorOf(path, response)).toMatchObject({ defined: true, code: 'UNAUTHORIZED' })
  })
})
