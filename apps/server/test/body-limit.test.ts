/**
 * A request body over the limit reaches a Node `fetch` client (undici) as a 413 it can read —
 * status and JSON body, a defined PAYLOAD_TOO_LARGE with its sizes — not a connection reset,
 * over RPC and REST, just above the limit and far above it. Against the server process, where
 * a server that closes the connection while the client still sends shows up as EPIPE.
 */
import { mkdtempSync, rmSync } from 'node:fs'
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

  it('without a valid key: a readable 401 before the body is read', async () => {
    const response = await post(path, bodyOf(path, 8 * 1024 * 1024), 'wrong-key-0123456789abcdef')
    expect(response.status).toBe(401)
    expect(await errorOf(path, response)).toMatchObject({ defined: true, code: 'UNAUTHORIZED' })
  })
})
