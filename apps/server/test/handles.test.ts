/**
 * Typed handles, executions.watch (SSE) and everything built on it, executions.retry and the
 * list filters, over real HTTP against real servers on ephemeral ports.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  ExecutionFailedError,
  ORPCError,
  RatchetError,
  WaitTimeoutError,
  createClient,
  isDefinedError,
  safe,
  type RatchetClient,
  type ClientError,
  type WatchEvent,
} from '@ratchet/client'
import {
  ExecutionFailedError as CoreExecutionFailedError,
  RatchetError as CoreRatchetError,
  WaitTimeoutError as CoreWaitTimeoutError,
} from '@ratchet/core'
import { createServer } from '../src/index'
import { healed, stepRuns, tasks } from './fixtures/handle-tasks'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

const servers: TestServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

async function start() {
  const t = await startTestServer(tasks)
  servers.push(t)
  return { t, client: createClient<typeof tasks>({ url: t.url, apiKey: API_KEY }) }
}

async function collect(events: AsyncIterable<WatchEvent>): Promise<WatchEvent[]> {
  const seen: WatchEvent[] = []
  for await (const event of events) seen.push(event)
  return seen
}

describe('typed handles', () => {
  it('enqueue, get, wait and run are typed by the task; run returns the output', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.double.enqueue({ n: 21 })
    const done = await client.tasks.double.wait(executionId, { timeoutMs: 10_000 })
    expect(done).toMatchObject({ status: 'completed', output: { doubled: 42 } })
    expect((await client.tasks.double.get(executionId)).output).toEqual({ doubled: 42 })
    expect(await client.tasks.double.run({ n: 5 })).toEqual({ doubled: 10 })
  })

  it('run rejects with ExecutionFailedError carrying the final execution; safe() returns [error, data]', async () => {
    const { client } = await start()
    const [error, data] = await safe(client.tasks.twoSteps.run({}))
    expect(data).toBeUndefined()
    expect(error).toBeInstanceOf(ExecutionFailedError)
    expect(error).toMatchObject({ status: 'failed', error: { code: 'NOT_YET' } })
  })

  it('cancel through a handle; wait gives up with WaitTimeoutError after timeoutMs', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    const timedOut = await client.tasks.gate.wait(executionId, { timeoutMs: 200 }).catch((e: unknown) => e)
    expect(timedOut).toBeInstanceOf(WaitTimeoutError)
    expect((timedOut as WaitTimeoutError).execution?.status).toMatch(/queued|running|waiting/)
    expect(await client.tasks.gate.cancel(executionId)).toMatchObject({ status: 'cancelled' })
  })

  it('contract errors of a handle are defined ORPCErrors; safe + isDefinedError narrow them', async () => {
    const { client } = await start()
    // @ts-expect-error n must be a number
    const [invalid, data, isDefined] = await safe(client.tasks.double.enqueue({ n: 'one' }))
    expect(data).toBeUndefined()
    expect(isDefined).toBe(true)
    expect(invalid).toBeInstanceOf(ORPCError)
    expect(invalid).toMatchObject({ defined: true, status: 400 })
    if (!isDefinedError(invalid) || invalid.code !== 'INVALID_INPUT')
      throw new Error(`unexpected ${String(invalid)}`)
    expect(invalid.data.issues).toEqual([expect.objectContaining({ path: ['input', 'n'] })])

    const [missing] = await safe(client.tasks.double.get('0198f0c4-8d2b-7000-8000-000000000000'))
    expect(isDefinedError(missing) && missing.code).toBe('NOT_FOUND')
    const { executionId } = await client.tasks.double.enqueue({ n: 1 })
    await client.tasks.double.wait(executionId, { timeoutMs: 10_000 })
    const [conflict] = await safe(client.tasks.double.cancel(executionId))
    expect(isDefinedError(conflict) && conflict.code).toBe('CONFLICT')
    // the client's own errors are not defined ones
    const [failed, , failedIsDefined] = await safe(client.tasks.twoSteps.run({}))
    expect(failed).toBeInstanceOf(ExecutionFailedError)
    expect(failedIsDefined).toBe(false)
  })

  it("the client's errors are the core's classes: one RatchetError, WaitTimeoutError, ExecutionFailedError", async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    const timedOut = await client.executions.wait(executionId, { timeoutMs: 50 }).catch((e: unknown) => e)
    expect(timedOut).toBeInstanceOf(CoreWaitTimeoutError)
    expect(timedOut).toBeInstanceOf(CoreRatchetError)
    expect(timedOut).toBeInstanceOf(RatchetError)
    expect(timedOut).toMatchObject({ code: 'WAIT_TIMEOUT', executionId, timeoutMs: 50, retryable: false })
    const failed = await client.tasks.twoSteps.run({}).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(CoreExecutionFailedError)
    expect(failed).toMatchObject({ name: 'ExecutionFailedError', code: 'EXECUTION_FAILED', status: 'failed' })
  })

  it('an AbortSignal ends a wait with its reason', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    const controller = new AbortController()
    const waiting = client.executions.wait(executionId, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('user went away')), 100)
    await expect(waiting).rejects.toThrow('user went away')
  })
})

describe('executions.watch', () => {
  it('sees queued → running → completed in order, each change once, then ends', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.double.enqueue({ n: 1 }, { delayMs: 150 })
    const events = await collect(client.executions.watch(executionId))
    expect(events.map((e) => e.status)).toEqual(['queued', 'running', 'completed'])
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b))
    expect(events.at(-1)!.execution).toMatchObject({ status: 'completed', output: { doubled: 2 } })
  })

  it('includes waiting and resumes: queued → running → waiting → queued → running → completed', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    const watching = collect(client.executions.watch(executionId))
    await until(
      () => client.executions.get(executionId),
      (e) => e.status === 'waiting',
    )
    await client.executions.signal(executionId, 'go', 'open')
    expect((await watching).map((e) => e.status)).toEqual([
      'queued',
      'running',
      'waiting',
      'queued',
      'running',
      'completed',
    ])
  })

  it('breaking out of the loop ends the server side; so does aborting the signal', async () => {
    const { t, client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    for await (const event of client.executions.watch(executionId)) {
      expect(t.server.activeWatches).toBe(1)
      if (event.status === 'queued') break
    }
    await until(
      () => t.server.activeWatches,
      (n) => n === 0,
    )

    const controller = new AbortController()
    const watching = collect(client.executions.watch(executionId, { signal: controller.signal }))
    await until(
      () => t.server.activeWatches,
      (n) => n === 1,
    )
    controller.abort(new Error('closed the tab'))
    await expect(watching).rejects.toThrow('closed the tab')
    await until(
      () => t.server.activeWatches,
      (n) => n === 0,
    )
  })

  it('NOT_FOUND for an unknown execution is a typed error, not a reconnect loop', async () => {
    const { client } = await start()
    const error = await collect(client.executions.watch('0198f0c4-8d2b-7000-8000-000000000000')).catch(
      (e: ClientError) => e,
    )
    expect(error).toBeInstanceOf(ORPCError)
    expect(error).toMatchObject({ defined: true, status: 404 })
    expect(isDefinedError(error) && error.code).toBe('NOT_FOUND')
  })

  it('resumes across a server restart from the last event it saw: nothing skipped, nothing repeated', async () => {
    const first = await startTestServer(tasks)
    const { port } = new URL(first.url)
    const client: RatchetClient<typeof tasks> = createClient<typeof tasks>({
      url: first.url,
      apiKey: API_KEY,
    })
    const { executionId } = await client.tasks.gate.enqueue({})
    await until(
      () => client.executions.get(executionId),
      (e) => e.status === 'waiting',
    )
    const seen: WatchEvent[] = []
    const watching = (async () => {
      for await (const event of client.executions.watch(executionId, { reconnectForMs: 20_000 }))
        seen.push(event)
    })()
    await until(
      () => seen.length,
      (n) => n === 3, // queued, running, waiting
    )
    await first.server.stop() // ends the stream; the file and its executions stay

    const second = await createServer({
      tasks,
      databaseUrl: `file:${first.dir}/ratchet.db`,
      port: Number(port),
      apiKeys: [{ name: 'test', secret: API_KEY }],
      drainMs: 1000,
    })
    await second.start()
    servers.push({ ...first, server: second, close: async () => first.close().then(() => second.stop()) })
    await until(
      () => second.activeWatches,
      (n) => n === 1,
      20_000,
    )
    await client.executions.signal(executionId, 'go', 'after the restart')
    await watching
    expect(seen.map((e) => e.status)).toEqual([
      'queued',
      'running',
      'waiting',
      'queued',
      'running',
      'completed',
    ])
    expect(new Set(seen.map((e) => e.seq)).size).toBe(seen.length)
    expect(seen.at(-1)!.execution.output).toBe('after the restart')
  })
})

describe('executions.retry', () => {
  it('runs a failed execution again as a new attempt: recorded successes are not run again', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.twoSteps.enqueue({})
    expect(await client.executions.wait(executionId)).toMatchObject({ status: 'failed', failures: 1 })
    healed.add(executionId)
    expect(await client.executions.retry(executionId)).toMatchObject({ status: 'queued', failures: 0 })
    expect(await client.executions.wait(executionId)).toMatchObject({ status: 'completed', output: 3 })
    expect(stepRuns.get(`${executionId}:first`)).toBe(1)
    expect(stepRuns.get(`${executionId}:second`)).toBe(2)
    const rerun = (await client.executions.history(executionId)).items.find(
      (h) => (h.detail as { transition?: string } | null)?.transition === 'rerun',
    )
    expect(rerun).toMatchObject({ from: 'failed', to: 'queued' })
  })

  it('a cancelled execution can be retried; a completed or running one is a CONFLICT', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    await client.executions.cancel(executionId)
    expect(await client.executions.retry(executionId)).toMatchObject({ status: 'queued' })
    const [conflict] = await safe(client.executions.retry(executionId))
    expect(isDefinedError(conflict) && conflict.code).toBe('CONFLICT')
    await client.executions.signal(executionId, 'go', 'again')
    expect(await client.executions.wait(executionId)).toMatchObject({ status: 'completed', output: 'again' })
    const [done] = await safe(client.executions.retry(executionId))
    expect(isDefinedError(done) && done.code).toBe('CONFLICT')
  })
})

describe('executions.list filters', () => {
  it('by creation time range and by idempotency key', async () => {
    const { client } = await start()
    const before = await client.tasks.double.enqueue({ n: 1 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const middle = new Date()
    const keyed = await client.tasks.double.enqueue({ n: 2 }, { idempotencyKey: 'order-7' })
    const after = new Date(Date.now() + 1)

    const since = await client.executions.list({ createdAfter: middle })
    expect(since.items.map((e) => e.id)).toEqual([keyed.executionId])
    const until = await client.executions.list({ createdBefore: middle })
    expect(until.items.map((e) => e.id)).toEqual([before.executionId])
    expect((await client.executions.list({ createdAfter: after })).items).toEqual([])
    const byKey = await client.executions.list({ taskId: 'double', idempotencyKey: 'order-7' })
    expect(byKey.items.map((e) => e.id)).toEqual([keyed.executionId])
  })
})
