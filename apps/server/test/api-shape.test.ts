/**
 * One API shape: every route names the execution `{id}`, and errors carry the data the contract
 * declares for them, over RPC (typed client) and REST alike.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, safe, type RatchetClient } from '@ratchet/client'
import { tasks } from './fixtures/handle-tasks'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

let t: TestServer
let client: RatchetClient<typeof tasks>
beforeEach(async () => {
  t = await startTestServer(tasks)
  client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
})
afterEach(async () => {
  await t.close()
})

const rest = (path: string, init: { method?: string; body?: unknown } = {}) =>
  fetch(`${t.url}/api${path}`, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })

const UNKNOWN_ID = '0198f0c4-8d2b-7000-8000-000000000000'

describe('path parameters', () => {
  it('every route of one execution names it {id}, the signal route included', async () => {
    const spec = (await (await rest('/spec.json', { method: 'GET' })).json()) as {
      paths: Record<string, unknown>
    }
    const executionRoutes = Object.keys(spec.paths).filter((p) => p.startsWith('/executions/{'))
    expect(executionRoutes.length).toBe(8)
    for (const path of executionRoutes) expect(path).toMatch(/^\/executions\/\{id\}(\/|$)/)
    expect(executionRoutes).toContain('/executions/{id}/signals')

    const { executionId } = await client.tasks.gate.enqueue({})
    const signalled = await rest(`/executions/${executionId}/signals`, {
      body: { name: 'go', payload: 'rest' },
    })
    expect(signalled.status).toBe(200)
    expect(await client.tasks.gate.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: 'rest',
    })
  })
})

describe('errors carry the data the contract declares', () => {
  it('NOT_FOUND names the execution id (RPC and REST); a wake-up NOT_FOUND names the key', async () => {
    for (const call of [
      () => client.executions.get(UNKNOWN_ID),
      () => client.executions.cancel(UNKNOWN_ID),
      () => client.executions.retry(UNKNOWN_ID),
      () => client.executions.history(UNKNOWN_ID),
      () => client.executions.signal(UNKNOWN_ID, 'go'),
      () => client.rpc.executions.wait({ id: UNKNOWN_ID, timeoutMs: 10 }),
      () => client.executions.get('not-an-id'),
    ]) {
      const [error] = await safe(call() as Promise<unknown>)
      expect(isDefinedError(error)).toBe(true)
      expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404 })
      expect((error as unknown as { data: unknown }).data).toEqual({ id: expect.any(String) as string })
    }
    const response = await rest(`/executions/${UNKNOWN_ID}`, { method: 'GET' })
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({
      code: 'NOT_FOUND',
      defined: true,
      data: { id: UNKNOWN_ID },
    })

    const [wakeup] = await safe(client.executions.wakeup('no-such-key', { output: 1 }))
    if (!isDefinedError(wakeup) || wakeup.code !== 'NOT_FOUND')
      throw new Error(`unexpected ${String(wakeup)}`)
    expect(wakeup.data).toEqual({ key: 'no-such-key' })
  })

  it('CONFLICT names the execution in the way and, when that is why, its status', async () => {
    const { executionId } = await client.tasks.double.enqueue({ n: 1 }, { idempotencyKey: 'k-1' })
    await client.executions.wait(executionId, { timeoutMs: 10_000 })

    const [reused] = await safe(client.tasks.double.enqueue({ n: 2 }, { idempotencyKey: 'k-1' }))
    if (!isDefinedError(reused) || reused.code !== 'CONFLICT') throw new Error(`unexpected ${String(reused)}`)
    expect(reused.data).toEqual({ executionId })

    for (const call of [
      () => client.executions.cancel(executionId),
      () => client.executions.retry(executionId),
      () => client.executions.signal(executionId, 'go'),
    ]) {
      const [error] = await safe(call())
      if (!isDefinedError(error) || error.code !== 'CONFLICT') throw new Error(`unexpected ${String(error)}`)
      expect(error.data).toEqual({ executionId, status: 'completed' })
    }
    const response = await rest(`/executions/${executionId}/cancel`)
    expect(response.status).toBe(409)
    expect(await response.json()).toMatchObject({
      code: 'CONFLICT',
      defined: true,
      data: { executionId, status: 'completed' },
    })
  })

  it('UNAUTHORIZED is a defined error on RPC, REST and the OpenAPI document', async () => {
    const anonymous = createClient<typeof tasks>({ url: t.url })
    const [error] = await safe(anonymous.executions.list())
    expect(isDefinedError(error) && error.code).toBe('UNAUTHORIZED')
    for (const path of ['/api/executions', '/api/spec.json']) {
      const response = await fetch(`${t.url}${path}`)
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ code: 'UNAUTHORIZED', defined: true, status: 401 })
    }
  })

  it('the watch of an unknown execution is a NOT_FOUND with its id', async () => {
    const [error] = await safe(
      (async () => {
        for await (const event of client.executions.watch(UNKNOWN_ID)) void event
      })(),
    )
    expect(error).toMatchObject({ code: 'NOT_FOUND', defined: true, data: { id: UNKNOWN_ID } })
    await until(
      () => t.server.activeWatches,
      (n) => n === 0,
    )
  })
})
