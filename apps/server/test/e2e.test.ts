import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, safe, WaitTimeoutError, type RatchetClient } from '@ratchet/client'
import { abortReasons, tasks } from './fixtures/tasks'
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

describe('end to end over HTTP', () => {
  it('enqueues through the typed client and reads the output', async () => {
    const { executionId, created, execution } = await client.tasks.echo.enqueue({ message: 'hello' })
    expect(created).toBe(true)
    expect(execution.status).toBe('queued')
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({
      status: 'completed',
      output: { echoed: 'hello' },
      runs: 1,
      attempt: 1,
      failures: 0,
      recoveries: 0,
      maxRecoveries: 5,
      error: null,
    })
    expect(done.finishedAt).toBeInstanceOf(Date)
    // as it was when enqueued
    expect(await client.executions.get(executionId, { asOf: done.createdAt })).toMatchObject({
      status: 'queued',
      runs: 0,
      attempt: 1,
      finishedAt: null,
    })
    const history = (await client.executions.history(executionId)).items
    expect(history.map((h) => [h.from, h.to])).toEqual([
      [null, 'queued'],
      ['queued', 'running'],
      ['running', 'completed'],
    ])
  })

  it('retries a throwing task with back-off until it succeeds', async () => {
    const { executionId } = await client.tasks.flaky.enqueue({ failures: 2 })
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({
      status: 'completed',
      runs: 3,
      attempt: 3,
      failures: 2,
      output: { succeededOnAttempt: 3 },
    })
    const history = (await client.executions.history(executionId)).items
    const retries = history.filter((h) => h.from === 'running' && h.to === 'queued')
    expect(retries).toHaveLength(2)
    for (const retry of retries) {
      const detail = retry.detail as { transition: string; runAt: number; error: { message: string } }
      expect(detail.transition).toBe('retry')
      expect(detail.error.message).toMatch(/transient failure/)
      // full jitter: the next attempt is due between the failure's row (never before it) and
      // the ceiling of the back-off (maxMs 100) after it
      expect(detail.runAt).toBeGreaterThanOrEqual(retry.at.getTime())
      expect(detail.runAt - retry.at.getTime()).toBeLessThanOrEqual(100)
    }
  })

  it('fails after maxAttempts with the stored error', async () => {
    const { executionId } = await client.tasks.alwaysFails.enqueue({})
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({ status: 'failed', runs: 3, attempt: 3, failures: 3, maxAttempts: 3 })
    expect(done.error).toMatchObject({ name: 'Error', message: 'boom', retryable: true })
    expect(done.error?.stack).toContain('boom')
  })

  it('does not retry a TerminalError', async () => {
    const { executionId } = await client.tasks.declined.enqueue({})
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({
      status: 'failed',
      attempt: 1,
      error: { code: 'CARD_DECLINED', retryable: false },
    })
  })

  it('aborts an attempt past its timeout through ctx.signal and retries it', async () => {
    const { executionId } = await client.tasks.slow.enqueue({ ms: 10_000, msOnRetry: 1 })
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({ status: 'completed', attempt: 2, output: { attempt: 2 } })
    expect(abortReasons.get(executionId)).toEqual(['TimeoutError'])
    const history = (await client.executions.history(executionId)).items
    expect(history.find((h) => h.from === 'running' && h.to === 'queued')?.detail).toMatchObject({
      error: { code: 'TIMEOUT' },
    })
  })

  it('ends timed_out when the last attempt times out', async () => {
    const { executionId } = await client.tasks.slow.enqueue({ ms: 10_000 })
    const done = await client.executions.wait(executionId, { timeoutMs: 5_000 })
    expect(done).toMatchObject({ status: 'timed_out', attempt: 2, error: { name: 'TimeoutError' } })
  })

  it('cancels a queued execution', async () => {
    const { executionId } = await client.tasks.echo.enqueue({ message: 'later' }, { delayMs: 60_000 })
    const cancelled = await client.executions.cancel(executionId)
    expect(cancelled).toMatchObject({ status: 'cancelled', runs: 0, attempt: 1, failures: 0 })
    expect((await client.executions.get(executionId)).status).toBe('cancelled')
    // cancelling again is a no-op
    expect((await client.executions.cancel(executionId)).status).toBe('cancelled')
  })

  it('cancels a running execution: its signal aborts and a late result changes nothing', async () => {
    const { executionId } = await client.tasks.slow.enqueue({ ms: 250 }, { timeoutMs: 10_000 })
    await until(
      () => client.executions.get(executionId),
      (e) => e.status === 'running',
    )
    const cancelled = await client.executions.cancel(executionId)
    expect(cancelled.status).toBe('cancelled')
    await until(
      () => abortReasons.get(executionId),
      (r) => r !== undefined,
    )
    expect(abortReasons.get(executionId)).toEqual(['CancelledError'])
    await new Promise((resolve) => setTimeout(resolve, 400))
    const after = await client.executions.get(executionId)
    expect(after).toMatchObject({ status: 'cancelled', runs: 1, attempt: 1, error: { code: 'CANCELLED' } })
    const history = (await client.executions.history(executionId)).items
    expect(history.at(-1)).toMatchObject({ from: 'running', to: 'cancelled' })
  })

  it('refuses to cancel a finished execution with CONFLICT', async () => {
    const { executionId } = await client.tasks.echo.enqueue({ message: 'x' })
    await client.executions.wait(executionId, { timeoutMs: 5_000 })
    const [error] = await safe(client.rpc.executions.cancel({ id: executionId }))
    expect(isDefinedError(error) && error.code).toBe('CONFLICT')
  })

  it('returns the same execution for the same idempotency key', async () => {
    const first = await client.tasks.echo.enqueue({ message: 'once' }, { idempotencyKey: 'order-42' })
    const second = await client.tasks.echo.enqueue({ message: 'once' }, { idempotencyKey: 'order-42' })
    expect(second.executionId).toBe(first.executionId)
    expect([first.created, second.created]).toEqual([true, false])
    const [error] = await safe(
      client.rpc.executions.enqueue({
        taskId: 'echo',
        input: { message: 'other' },
        options: { idempotencyKey: 'order-42' },
      }),
    )
    expect(isDefinedError(error) && error.code).toBe('CONFLICT')
    expect((await client.executions.list({ taskId: 'echo' })).items).toHaveLength(1)
  })

  it('the same input with its keys in another order is the same execution, not a CONFLICT', async () => {
    // Raw JSON bodies over REST, so the key order on the wire is exactly as written here.
    const enqueue = (body: string) =>
      fetch(`${t.url}/api/executions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body,
      })
    const first = await enqueue(
      '{"taskId":"configure","input":{"account":"acme","settings":{"plan":"pro","seats":{"max":5,"min":1}}},"options":{"idempotencyKey":"cfg-1"}}',
    )
    expect(first.status).toBe(200)
    const created = (await first.json()) as { execution: { id: string }; created: boolean }
    expect(created.created).toBe(true)
    const reordered = await enqueue(
      '{"options":{"idempotencyKey":"cfg-1"},"input":{"settings":{"seats":{"min":1,"max":5},"plan":"pro"},"account":"acme"},"taskId":"configure"}',
    )
    expect(reordered.status).toBe(200)
    expect(await reordered.json()).toMatchObject({ execution: { id: created.execution.id }, created: false })
    // Another value is still another input.
    const other = await enqueue(
      '{"taskId":"configure","input":{"account":"acme","settings":{"seats":{"min":1,"max":6},"plan":"pro"}},"options":{"idempotencyKey":"cfg-1"}}',
    )
    expect(other.status).toBe(409)
    expect(await other.json()).toMatchObject({ code: 'CONFLICT' })
    // An array is ordered: the same items in another order are another input.
    const listed = await enqueue(
      '{"taskId":"configure","input":{"account":"acme","settings":{"plan":"pro","seats":{"max":5,"min":1},"tags":[1,2]}},"options":{"idempotencyKey":"cfg-2"}}',
    )
    expect(listed.status).toBe(200)
    const swapped = await enqueue(
      '{"taskId":"configure","input":{"account":"acme","settings":{"plan":"pro","seats":{"max":5,"min":1},"tags":[2,1]}},"options":{"idempotencyKey":"cfg-2"}}',
    )
    expect(swapped.status).toBe(409)
    expect((await client.executions.list({ taskId: 'configure' })).items).toHaveLength(2)
  })

  it('addresses tasks by key or by id, and lists them with JSON Schemas', async () => {
    const byId = await client.executions.enqueue('always-fails', {}, { delayMs: 60_000 })
    const byKey = await client.executions.enqueue('alwaysFails', {}, { delayMs: 60_000 })
    expect([byId.execution.taskId, byKey.execution.taskId]).toEqual(['always-fails', 'always-fails'])
    const listed = await client.listTasks()
    const echo = listed.find((x) => x.id === 'echo')
    expect(echo).toMatchObject({ key: 'echo', retry: { maxAttempts: 3 } })
    expect(echo?.inputSchema).toMatchObject({ type: 'object', required: ['message'] })
    expect(echo?.outputSchema).toMatchObject({ properties: { echoed: { type: 'string' } } })
  })

  it('lists with filters and cursor pagination, newest first', async () => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++)
      ids.push((await client.tasks.echo.enqueue({ message: `m${i}` }, { delayMs: 60_000 })).executionId)
    await client.tasks.flaky.enqueue({ failures: 0 }, { delayMs: 60_000 })
    const page1 = await client.executions.list({ taskId: 'echo', limit: 2 })
    const page2 = await client.executions.list({ taskId: 'echo', limit: 2, cursor: page1.nextCursor! })
    const page3 = await client.executions.list({ taskId: 'echo', limit: 2, cursor: page2.nextCursor! })
    expect([...page1.items, ...page2.items, ...page3.items].map((e) => e.id)).toEqual([...ids].reverse())
    expect(page3.nextCursor).toBeNull()
    expect((await client.executions.list({ status: ['queued'] })).items).toHaveLength(6)
    expect((await client.executions.list({ status: 'completed' })).items).toHaveLength(0)
  })

  it('wait gives up after timeoutMs with the last state, and honours an abort signal', async () => {
    const { executionId } = await client.tasks.echo.enqueue({ message: 'later' }, { delayMs: 60_000 })
    const error = await client.executions.wait(executionId, { timeoutMs: 100 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WaitTimeoutError)
    expect((error as WaitTimeoutError).execution?.status).toBe('queued')
    const controller = new AbortController()
    const waiting = client.executions.wait(executionId, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('user gave up')), 50)
    await expect(waiting).rejects.toThrow()
  })

  it('uses the fetch it is given (serverless and edge runtimes)', async () => {
    const seen: string[] = []
    const custom = createClient<typeof tasks>({
      url: `${t.url}/`,
      apiKey: API_KEY,
      fetch: (input, init) => {
        seen.push(input instanceof Request ? new URL(input.url).pathname : String(input))
        return fetch(input, init)
      },
    })
    const { executionId } = await custom.tasks.echo.enqueue({ message: 'edge' })
    expect((await custom.executions.wait(executionId, { timeoutMs: 5_000 })).output).toEqual({
      echoed: 'edge',
    })
    expect(seen).toEqual(expect.arrayContaining(['/rpc/executions/enqueue', '/rpc/executions/watch']))
  })

  it('serves REST with the OpenAPI spec, and health without a key', async () => {
    const health = await fetch(`${t.url}/healthz`)
    expect(health.status).toBe(200)
    const auth = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }
    const created = await fetch(`${t.url}/api/executions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ taskId: 'echo', input: { message: 'rest' } }),
    })
    expect(created.status).toBe(200)
    const { execution } = (await created.json()) as { execution: { id: string } }
    const got = await fetch(`${t.url}/api/executions/${execution.id}`, { headers: auth })
    expect(((await got.json()) as { taskId: string }).taskId).toBe('echo')
    const spec = (await (await fetch(`${t.url}/api/spec.json`, { headers: auth })).json()) as {
      paths: Record<string, unknown>
    }
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/executions',
        '/executions/{id}',
        '/executions/{id}/cancel',
        '/executions/{id}/history',
        '/tasks',
      ]),
    )
    expect((await fetch(`${t.url}/api/spec.json`)).status).toBe(401)
  })
})
