import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, ORPCError, safe, type RatchetClient } from '@ratchet/client'
import { tasks } from './fixtures/tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'

const PAYLOAD_LIMIT = 64 * 1024

let t: TestServer
let client: RatchetClient<typeof tasks>

beforeEach(async () => {
  t = await startTestServer(tasks, { maxPayloadBytes: PAYLOAD_LIMIT })
  client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
  // one execution already there, so "nothing changed" is not just "still empty"
  await client.tasks.echo.enqueue({ message: 'existing' }, { delayMs: 60_000 })
})

afterEach(async () => {
  await t.close()
})

/** Every execution and history row, so a test sees any write at all. */
async function snapshot() {
  const { items } = await t.server.engine.list({ limit: 500 })
  const history = await Promise.all(
    items.map(async (e) => (await t.server.engine.history(e.id, { limit: 1000 })).items),
  )
  return { executions: items.length, history: history.flat().length, ids: items.map((e) => e.id) }
}

async function expectNothingChanged(action: () => Promise<unknown>) {
  const before = await snapshot()
  await action()
  expect(await snapshot()).toEqual(before)
}

const rest = (path: string, init: RequestInit & { key?: string | null } = {}) =>
  fetch(`${t.url}${path}`, {
    method: init.method ?? 'POST',
    headers: {
      'content-type': 'application/json',
      ...(init.key === null ? {} : { authorization: `Bearer ${init.key ?? API_KEY}` }),
    },
    ...(init.body !== undefined ? { body: init.body } : {}),
  })

describe('bad input gets a clear error and changes nothing', () => {
  it('unknown task → UNKNOWN_TASK (404) listing the known tasks', async () => {
    await expectNothingChanged(async () => {
      const [error] = await safe(client.rpc.executions.enqueue({ taskId: 'no-such-task', input: {} }))
      expect(isDefinedError(error)).toBe(true)
      if (!isDefinedError(error) || error.code !== 'UNKNOWN_TASK')
        throw new Error(`unexpected ${String(error)}`)
      expect(error.status).toBe(404)
      expect(error.data.taskId).toBe('no-such-task')
      expect(error.data.knownTaskIds).toContain('echo')
    })
  })

  it('input failing the schema → INVALID_INPUT naming the field', async () => {
    await expectNothingChanged(async () => {
      const [error] = await safe(
        client.rpc.executions.enqueue({ taskId: 'echo', input: { message: 'hi', email: 'not-an-email' } }),
      )
      if (!isDefinedError(error) || error.code !== 'INVALID_INPUT')
        throw new Error(`unexpected ${String(error)}`)
      expect(error.status).toBe(400)
      expect(error.message).toMatch(/echo.*email/)
      expect(error.data.issues).toEqual([expect.objectContaining({ path: ['input', 'email'] })])
    })
  })

  it('a missing required field → INVALID_INPUT with its path', async () => {
    await expectNothingChanged(async () => {
      const response = await rest('/api/executions', { body: JSON.stringify({ taskId: 'echo', input: {} }) })
      expect(response.status).toBe(400)
      const body = (await response.json()) as { code: string; data: { issues: { path: unknown[] }[] } }
      expect(body.code).toBe('INVALID_INPUT')
      expect(body.data.issues[0]?.path).toEqual(['input', 'message'])
    })
  })

  it('invalid options → INVALID_INPUT naming the option', async () => {
    await expectNothingChanged(async () => {
      const [error] = await safe(
        client.rpc.executions.enqueue({ taskId: 'echo', input: { message: 'x' }, options: { delayMs: -5 } }),
      )
      if (!isDefinedError(error) || error.code !== 'INVALID_INPUT')
        throw new Error(`unexpected ${String(error)}`)
      expect(error.data.issues[0]?.path).toEqual(['options', 'delayMs'])
      const [unknownOption] = await safe(
        client.rpc.executions.enqueue({
          taskId: 'echo',
          input: { message: 'x' },
          options: { delay: 5 } as never,
        }),
      )
      expect(isDefinedError(unknownOption) && unknownOption.code).toBe('INVALID_INPUT')
      expect((unknownOption as Error).message).toMatch(/delay/)
    })
  })

  it('malformed JSON → INVALID_INPUT (400) with the reason, on REST and RPC', async () => {
    await expectNothingChanged(async () => {
      const restResponse = await rest('/api/executions', { body: '{"taskId": "echo", "input": {' })
      expect(restResponse.status).toBe(400)
      const restError = (await restResponse.json()) as { code: string; defined: boolean; message: string }
      const rpcResponse = await rest('/rpc/executions/enqueue', { body: '{"json": {"taskId": ' })
      expect(rpcResponse.status).toBe(400)
      const rpcError = ((await rpcResponse.json()) as { json: typeof restError }).json
      for (const error of [restError, rpcError]) {
        expect(error).toMatchObject({
          code: 'INVALID_INPUT',
          defined: true,
          data: { issues: [{ path: [], message: expect.stringMatching(/^malformed JSON: /) as string }] },
        })
        expect(error.message).toMatch(/^the request could not be decoded \(malformed JSON: .+\); send JSON/)
      }
    })
  })

  it('missing or wrong API key → 401 (RPC, REST, spec)', async () => {
    await expectNothingChanged(async () => {
      for (const apiKey of [undefined, 'wrong-key-0123456789abcdef']) {
        const anonymous = createClient<typeof tasks>({ url: t.url, ...(apiKey ? { apiKey } : {}) })
        const [error] = await safe(
          anonymous.rpc.executions.enqueue({ taskId: 'echo', input: { message: 'x' } }),
        )
        expect(isDefinedError(error) && error.code).toBe('UNAUTHORIZED')
        expect((error as { status: number }).status).toBe(401)
      }
      expect((await rest('/api/executions', { key: null, body: '{}' })).status).toBe(401)
      expect((await rest('/api/executions', { key: 'wrong-key-0123456789abcdef', body: '{}' })).status).toBe(
        401,
      )
      // authentication comes before validation: an anonymous caller learns nothing about the input
      const anonymousBadInput = await rest('/api/executions', {
        key: null,
        body: JSON.stringify({ taskId: 'echo', input: {} }),
      })
      expect(anonymousBadInput.status).toBe(401)
    })
  })

  it('an input above the payload limit → PAYLOAD_TOO_LARGE with size and limit', async () => {
    await expectNothingChanged(async () => {
      const [error] = await safe(
        client.rpc.executions.enqueue({ taskId: 'blob', input: { data: 'x'.repeat(PAYLOAD_LIMIT) } }),
      )
      if (!isDefinedError(error) || error.code !== 'PAYLOAD_TOO_LARGE')
        throw new Error(`unexpected ${String(error)}`)
      expect(error.status).toBe(413)
      expect(error.data).toMatchObject({ field: 'input', limitBytes: PAYLOAD_LIMIT })
      expect(error.data.sizeBytes).toBeGreaterThan(PAYLOAD_LIMIT)
      expect(error.message).toMatch(/input is \d+ bytes, above the limit of 65536 bytes/)
    })
  })

  it('a request body far above the limit → 413 before it is parsed', async () => {
    await expectNothingChanged(async () => {
      const body = JSON.stringify({ taskId: 'blob', input: { data: 'x'.repeat(4 * PAYLOAD_LIMIT) } })
      const response = await rest('/api/executions', { body })
      expect(response.status).toBe(413)
      expect(await response.json()).toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
        defined: true,
        data: { field: 'body', sizeBytes: Buffer.byteLength(body), limitBytes: PAYLOAD_LIMIT + 64 * 1024 },
      })
    })
  })

  it('an output above the limit fails the execution without retrying', async () => {
    const { executionId } = await client.tasks.blob.enqueue({ data: '', outputBytes: PAYLOAD_LIMIT + 1 })
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({ status: 'failed', attempt: 1, error: { code: 'PAYLOAD_TOO_LARGE' } })
    expect(done.error?.message).toMatch(/^output is \d+ bytes/)
  })

  it('an unknown execution id → NOT_FOUND (404) on get, cancel, history and wait', async () => {
    await expectNothingChanged(async () => {
      for (const id of ['01a20000-0000-7000-8000-000000000000', 'not-an-id']) {
        const calls: (() => Promise<unknown>)[] = [
          () => client.rpc.executions.get({ id }),
          () => client.rpc.executions.cancel({ id }),
          () => client.rpc.executions.history({ id }),
          () => client.rpc.executions.wait({ id, timeoutMs: 10 }),
        ]
        for (const call of calls) {
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          )
          expect(error).toBeInstanceOf(ORPCError)
          expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404, defined: true })
        }
      }
      expect((await rest('/api/executions/not-an-id', { method: 'GET' })).status).toBe(404)
    })
  })

  it('an unknown route → 404 JSON', async () => {
    const response = await rest('/nope', { method: 'GET' })
    expect(response.status).toBe(404)
    expect(((await response.json()) as { code: string }).code).toBe('NOT_FOUND')
  })
})
