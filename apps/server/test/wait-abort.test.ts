/**
 * An AbortSignal given to `executions.wait` (or `watch`) ends it at once in every window: before
 * the call, while the stream connects, while it streams, between reconnects, and when the abort
 * no longer reaches the request at all (Node's fetch loses the link between a signal and its
 * request once the Request object is garbage-collected: the hang seen under the full suite's
 * load). "At once" is checked without a clock: the promise has settled before the next
 * macrotask after the abort.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { tasks } from './fixtures/handle-tasks'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const servers: TestServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

/** A fetch that counts its calls and can hold them, or drop their signal, as a test says. */
function instrumentedFetch(
  options: {
    /** Resolves when a held connect may go on. */
    hold?: Promise<void>
    /** Sends the request without its signal: an abort never reaches it. */
    dropSignal?: boolean
    /** Answers this status instead of reaching the server. */
    respondWith?: number
  } = {},
) {
  const calls: Request[] = []
  const fetchImpl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    calls.push(request)
    if (options.hold) await options.hold
    if (options.respondWith !== undefined) return new Response('unavailable', { status: options.respondWith })
    return fetch(options.dropSignal ? new Request(request, { signal: null }) : request)
  }
  return { fetch: fetchImpl, calls }
}

/** A server with a gate execution waiting: its wait never ends unless aborted. */
async function start(fetchImpl?: typeof fetch) {
  const t = await startTestServer(tasks)
  servers.push(t)
  const setup = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
  const { executionId } = await setup.tasks.gate.enqueue({})
  await until(
    () => setup.executions.get(executionId),
    (e) => e.status === 'waiting',
  )
  // The client under test, through the given fetch.
  const client = createClient<typeof tasks>({
    url: t.url,
    apiKey: API_KEY,
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  })
  return { t, client, executionId }
}

/** Aborts, then tells whether `promise` settled before the next macrotask. */
async function settlesAtOnce(promise: Promise<unknown>, controller: AbortController, reason: Error) {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  controller.abort(reason)
  await new Promise((resolve) => setTimeout(resolve, 0))
  return settled
}

const watchesClose = (t: TestServer) =>
  until(
    () => t.server.activeWatches,
    (n) => n === 0,
  )

describe('an AbortSignal ends executions.wait at once', () => {
  it('already aborted: rejects with its reason and sends nothing', async () => {
    const { fetch: counted, calls } = instrumentedFetch()
    const { client, executionId } = await start(counted)
    const before = calls.length
    const reason = new Error('gave up before asking')
    const waiting = client.executions.wait(executionId, { signal: AbortSignal.abort(reason) })
    await expect(waiting).rejects.toBe(reason)
    expect(calls.length).toBe(before)
  })

  it('while the stream connects; a connection that opens afterwards is closed', async () => {
    let release!: () => void
    const hold = new Promise<void>((resolve) => (release = resolve))
    const { fetch: held, calls } = instrumentedFetch({ hold, dropSignal: true })
    const { t, client, executionId } = await start(held)
    const controller = new AbortController()
    const waiting = client.executions.wait(executionId, { signal: controller.signal })
    const held1 = calls.length
    await until(
      () => calls.length,
      (n) => n > held1,
    )
    const reason = new Error('left while connecting')
    expect(await settlesAtOnce(waiting, controller, reason)).toBe(true)
    await expect(waiting).rejects.toBe(reason)
    // The connect goes on (the abort never reached it) and opens a stream nobody reads.
    release()
    await until(
      () => t.server.activeWatches,
      (n) => n === 1,
    ).catch(() => undefined)
    await watchesClose(t)
  })

  it('while streaming, when the abort never reaches the request', async () => {
    const { fetch: deaf } = instrumentedFetch({ dropSignal: true })
    const { t, client, executionId } = await start(deaf)
    const controller = new AbortController()
    const waiting = client.executions.wait(executionId, { signal: controller.signal })
    await until(
      () => t.server.activeWatches,
      (n) => n === 1,
    )
    const reason = new Error('user went away')
    expect(await settlesAtOnce(waiting, controller, reason)).toBe(true)
    await expect(waiting).rejects.toBe(reason)
    await watchesClose(t)
  })

  it('while streaming, after a garbage collection (the race the full suite hit)', async () => {
    const { t, client, executionId } = await start()
    const controller = new AbortController()
    const waiting = client.executions.wait(executionId, { signal: controller.signal })
    await until(
      () => t.server.activeWatches,
      (n) => n === 1,
    )
    gc()
    await new Promise((resolve) => setTimeout(resolve, 10))
    gc()
    const reason = new Error('user went away')
    expect(await settlesAtOnce(waiting, controller, reason)).toBe(true)
    await expect(waiting).rejects.toBe(reason)
    await watchesClose(t)
  })

  it('between reconnects, and none is tried after', async () => {
    const { fetch: failing, calls } = instrumentedFetch({ respondWith: 503 })
    const { client, executionId } = await start(failing)
    const controller = new AbortController()
    const waiting = client.executions.wait(executionId, { signal: controller.signal })
    const first = calls.length
    // Two failed connects: the client is backing off before the third.
    await until(
      () => calls.length,
      (n) => n >= first + 2,
    )
    const reason = new Error('stopped retrying')
    expect(await settlesAtOnce(waiting, controller, reason)).toBe(true)
    await expect(waiting).rejects.toBe(reason)
    const after = calls.length
    await new Promise((resolve) => setTimeout(resolve, 500)) // longer than the back-off so far
    expect(calls.length).toBe(after)
  })

  it('the original scenario, many times, with aborts at every moment and garbage collections', async () => {
    const { t, client, executionId } = await start()
    for (let i = 0; i < 60; i++) {
      const controller = new AbortController()
      const waiting = client.executions.wait(executionId, { signal: controller.signal })
      // 0 to ~30 ms: before the connect, during it, and while the stream is open.
      const pause = i % 20 === 0 ? 0 : (i * 7) % 31
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause))
      if (i % 3 === 0) gc()
      const reason = new Error(`abort ${i}`)
      expect(await settlesAtOnce(waiting, controller, reason), `abort ${i} after ${pause} ms`).toBe(true)
      await expect(waiting).rejects.toBe(reason)
    }
    await watchesClose(t)
  })
})
