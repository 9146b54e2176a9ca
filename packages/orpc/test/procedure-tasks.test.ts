/**
 * Procedure tasks over real HTTP: a web app served from its fetch handler on an ephemeral
 * port, a Ratchet server on another, the app's procedures wrapped as tasks.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RouterClient } from '@orpc/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient, type RatchetClient } from '@ratchet/client'
import { procedureTask, createAppClient, remoteTasks, type RatchetCallContext } from '@ratchet/orpc'
import { createRatchetFetchHandler } from '@ratchet/orpc/app'
import { serveFetch } from '@ratchet/orpc/node'
import { createServer, type RatchetServer } from '@ratchet/server'
import { aborted, appRouter, calls, type AppRouter } from './app-router'

const SECRET = 'app-secret-0123456789abcdef0123456789'
const API_KEY = 'test-key-0123456789abcdef'
const fast = { initialMs: 10, factor: 1, maxMs: 10 }

function makeTasks(appUrl: string) {
  const app = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
    url: `${appUrl}/rpc`,
    secret: SECRET,
  })
  const nowhere = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
    url: 'http://127.0.0.1:9/rpc', // discard port: nothing listens
    secret: SECRET,
  })
  return {
    ...remoteTasks(app, {
      say: { procedure: 'echo.say', retry: { maxAttempts: 1 } },
      failing: { procedure: 'fail.withStatus', retry: { maxAttempts: 2, backoff: fast } },
      hang: { procedure: 'slow.hang', timeoutMs: 400, retry: { maxAttempts: 1 } },
      hangLong: { procedure: 'slow.hang', timeoutMs: 60_000, retry: { maxAttempts: 1 } },
    }),
    refused: procedureTask({ id: 'refused', retry: { maxAttempts: 2, backoff: fast } }, nowhere.echo.say),
  }
}
type Tasks = ReturnType<typeof makeTasks>

let app: Awaited<ReturnType<typeof serveFetch>>
let ratchet: RatchetServer
let client: RatchetClient<Tasks>
let dir: string

beforeAll(async () => {
  app = await serveFetch(createRatchetFetchHandler(appRouter, { secret: SECRET }))
  dir = mkdtempSync(join(tmpdir(), 'ratchet-orpc-'))
  ratchet = await createServer({
    tasks: makeTasks(app.url),
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    apiKeys: [{ name: 'test', secret: API_KEY }],
    drainMs: 500,
  })
  const { url } = await ratchet.start()
  client = createClient<Tasks>({ url, apiKey: API_KEY })
})

afterAll(async () => {
  await ratchet.stop()
  await app.close()
  rmSync(dir, { recursive: true, force: true })
})

const wait = (id: string) => client.executions.wait(id, { timeoutMs: 20_000 })
/** The attempt and idempotency key of each call the app saw for an execution, in order. */
const callsOf = (executionId: string) =>
  calls
    .filter((c) => c.executionId === executionId)
    .map(({ attempt, idempotencyKey }) => ({ attempt, idempotencyKey }))

describe('procedure tasks', () => {
  it('happy path: the app gets the execution id, the attempt and an idempotency key', async () => {
    const { executionId } = await client.tasks.say.enqueue({ text: 'hello' })
    expect(await wait(executionId)).toMatchObject({
      status: 'completed',
      output: { said: 'hello', executionId, attempt: 1, idempotencyKey: `ratchet:${executionId}` },
    })
  })

  it.each([408, 429, 500, 502, 503, 504])('%i is retried, and the retry succeeds', async (status) => {
    const { executionId } = await client.tasks.failing.enqueue({ status, times: 1, key: `retry-${status}` })
    expect(await wait(executionId)).toMatchObject({ status: 'completed', failures: 1, output: { calls: 2 } })
    const retry = (await client.executions.history(executionId)).items.find(
      (h) => h.from === 'running' && h.to === 'queued',
    )
    expect(retry?.detail).toMatchObject({ error: { code: `HTTP_${status}`, retryable: true } })
    // the app saw attempt 1, then 2, with the same idempotency key on both
    expect(callsOf(executionId)).toEqual([
      { attempt: 1, idempotencyKey: `ratchet:${executionId}` },
      { attempt: 2, idempotencyKey: `ratchet:${executionId}` },
    ])
  })

  it('a manual executions.retry of a failed task calls the app again, with the same idempotency key', async () => {
    const { executionId } = await client.tasks.failing.enqueue({ status: 422, times: 1, key: 'manual-retry' })
    expect(await wait(executionId)).toMatchObject({ status: 'failed', error: { code: 'HTTP_422' } })
    expect(callsOf(executionId)).toEqual([{ attempt: 1, idempotencyKey: `ratchet:${executionId}` }])
    await client.executions.retry(executionId)
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: { ok: true, calls: 2 } })
    // Only the key is compared: `attempt` is failures + 1 and a rerun resets the failure
    // budget, so the rerun's call says attempt 1 again.
    expect(callsOf(executionId).map((c) => c.idempotencyKey)).toEqual([
      `ratchet:${executionId}`,
      `ratchet:${executionId}`,
    ])
  })

  it('429 with Retry-After: the retry waits as long as the app asked', async () => {
    const { executionId } = await client.tasks.failing.enqueue({
      status: 429,
      times: 1,
      key: 'after',
      retryAfter: '1',
    })
    expect(await wait(executionId)).toMatchObject({ status: 'completed', failures: 1 })
    const attempts = calls.filter((c) => c.executionId === executionId)
    expect(attempts).toHaveLength(2)
    const history = (await client.executions.history(executionId)).items
    const failedAt = history.find((h) => h.from === 'running' && h.to === 'queued')!.at.getTime()
    const retriedAt = history.filter((h) => h.to === 'running')[1]!.at.getTime()
    expect(retriedAt - failedAt).toBeGreaterThanOrEqual(950)
  })

  it.each([
    [400, 'HTTP_400'],
    [401, 'HTTP_401'],
    [403, 'HTTP_403'],
    [404, 'NOT_FOUND'],
    [422, 'HTTP_422'],
  ])('%i fails at once with %s, and the app is called once', async (status, code) => {
    const key = `terminal-${status}`
    const { executionId } = await client.tasks.failing.enqueue({ status, times: 5, key })
    expect(await wait(executionId)).toMatchObject({ status: 'failed', failures: 1, error: { code } })
    expect(calls.filter((c) => c.executionId === executionId)).toHaveLength(1)
  })

  it('connection refused is retried as a NETWORK_ERROR', async () => {
    const { executionId } = await client.tasks.refused.enqueue({ text: 'anyone?' })
    expect(await wait(executionId)).toMatchObject({
      status: 'failed',
      failures: 2,
      error: { code: 'NETWORK_ERROR' },
    })
  })

  it('the task timeout aborts the call: the app sees the request go away', async () => {
    const { executionId } = await client.tasks.hang.enqueue({})
    expect(await wait(executionId)).toMatchObject({ status: 'timed_out' })
    await expect.poll(() => aborted.has(executionId)).toBe(true)
  })

  it('cancel aborts the call in flight: the app sees the request go away', async () => {
    const { executionId } = await client.tasks.hangLong.enqueue({})
    await expect.poll(() => calls.some((c) => c.executionId === executionId)).toBe(true)
    await client.executions.cancel(executionId)
    await expect.poll(() => aborted.has(executionId)).toBe(true)
    expect(await client.executions.get(executionId)).toMatchObject({ status: 'cancelled' })
  })

  it('shutdown aborts the call in flight: the app sees the request go away', async () => {
    // A Ratchet server of its own, so that stopping it leaves the one the other tests use.
    const stopping = await createServer({
      tasks: makeTasks(app.url),
      databaseUrl: `file:${join(dir, 'shutdown.db')}`,
      port: 0,
      apiKeys: [{ name: 'test', secret: API_KEY }],
      drainMs: 100,
    })
    try {
      const { url } = await stopping.start()
      const other = createClient<Tasks>({ url, apiKey: API_KEY })
      const { executionId } = await other.tasks.hangLong.enqueue({})
      await expect.poll(() => calls.some((c) => c.executionId === executionId)).toBe(true)
      expect(aborted.has(executionId)).toBe(false)
      await stopping.stop()
      await expect.poll(() => aborted.has(executionId)).toBe(true)
    } finally {
      await stopping.stop()
    }
  })

  it('bad input for a remote task with no input schema is refused by the app, not retried', async () => {
    // @ts-expect-error text must be a string
    const { executionId } = await client.tasks.say.enqueue({ text: 42 })
    expect(await wait(executionId)).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { code: 'HTTP_400' },
    })
  })
})
