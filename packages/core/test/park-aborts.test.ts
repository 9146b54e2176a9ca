/**
 * Parking never leaves task code running unsupervised: when an execution parks on a durable
 * wait while code outside a step is still in flight (a fetch started between steps), its
 * `ctx.signal` aborts with a SuspendedError, so that code is told to stop before the next
 * attempt replays the run. The same when a run fails while some of its code still runs (a
 * step beside the branch that threw). A real HTTP server on an ephemeral port sees its request
 * go away.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import { task } from '@ratchet/core'
import { openEngine } from './open-engine'

/**
 * A server that holds the first request open (and reports when it goes away) and answers the
 * others; `arrived(n)` resolves once it has received `n` requests.
 */
async function holdingServer() {
  let requests = 0
  const waiters: { n: number; resolve: () => void }[] = []
  let abortedResolve!: () => void
  const aborted = new Promise<void>((resolve) => (abortedResolve = resolve))
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    requests++
    for (const w of waiters.filter((w) => w.n <= requests)) w.resolve()
    if (requests > 1) return res.end('"answered"')
    // Never answered: only the client going away ends it.
    res.on('close', () => {
      if (!res.writableEnded) abortedResolve()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as AddressInfo
  const arrived = (n: number) =>
    new Promise<void>((resolve) => (n <= requests ? resolve() : waiters.push({ n, resolve })))
  return { url: `http://127.0.0.1:${port}/`, aborted, arrived, requests: () => requests }
}

describe('parking', () => {
  it('aborts ctx.signal with a SuspendedError: a fetch still in flight outside a step is cancelled', async () => {
    const http = await holdingServer()
    const reasons: unknown[] = []
    const fetcher = task({
      id: 'fetch-beside-a-wait',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason))
        // Code between steps: a fetch, in flight (the server has it) when the wait is asked for,
        // awaited while the wait blocks: `const s = ctx.waitForSignal(…); await fetch(…)`.
        const sent = http.requests() + 1
        const response = fetch(http.url, { signal: ctx.signal })
        await http.arrived(sent)
        const approval = ctx.waitForSignal<string>('approval')
        const fetched: unknown = await (await response).json()
        return { fetched, approval: await approval }
      },
    })
    const { engine } = openEngine({ fetcher })
    const { execution } = await engine.enqueue(fetcher, null)

    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', error: null, failures: 0 })
    // The server saw its request go away: the orphaned fetch did not run on beside the next attempt.
    const gone = await Promise.race([
      http.aborted.then(() => 'aborted'),
      new Promise((resolve) => setTimeout(() => resolve('still open after 5 s'), 5_000)),
    ])
    expect(gone).toBe('aborted')
    expect(reasons).toHaveLength(1)
    expect(reasons[0]).toMatchObject({ name: 'SuspendedError', code: 'SUSPENDED', retryable: false })
    // The abort is not the execution's error, nor a failed attempt in its history.
    expect(
      (await engine.history(execution.id)).items.filter(
        (h) => h.to === 'failed' || (h.to === 'queued' && h.from === 'running'),
      ),
    ).toEqual([])

    await engine.signal(execution.id, 'approval', 'yes')
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: { fetched: 'answered', approval: 'yes' },
      failures: 0,
    })
    expect(http.requests()).toBe(2)
  })

  it('a run that fails while a step body of it still runs aborts ctx.signal with that failure', async () => {
    const http = await holdingServer()
    const reasons: unknown[] = []
    const racer = task({
      id: 'fail-beside-a-step',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 60_000, factor: 1, maxMs: 60_000 } },
      run: async (_input, ctx) => {
        ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason))
        const sent = http.requests() + 1
        // One branch is a step whose fetch the server holds open; the other fails once the fetch
        // is in flight: the run's promise rejects while the step body still runs.
        await ctx.all([
          ctx.step('slow', async () => (await fetch(http.url, { signal: ctx.signal })).json()),
          http.arrived(sent).then(() => {
            throw new Error('the other branch failed')
          }),
        ])
      },
    })
    const { engine } = openEngine({ racer })
    const { execution } = await engine.enqueue(racer, null)

    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', failures: 1 })
    const gone = await Promise.race([
      http.aborted.then(() => 'aborted'),
      new Promise((resolve) => setTimeout(() => resolve('still open after 5 s'), 5_000)),
    ])
    expect(gone).toBe('aborted')
    expect(reasons).toEqual([expect.objectContaining({ message: 'the other branch failed' })])
  })
})
