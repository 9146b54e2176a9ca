/**
 * `/readyz` over HTTP: not ready until the executor started (migrations run before createServer
 * returns), while the database fails, and while the server drains; `/healthz` stays 200 and
 * reads nothing.
 */
import { createServer as createHttpServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { createServer, type RatchetServer } from '../src/index'
import { tasks } from './fixtures/ops-tasks'
import { API_KEY, startTestServer, until } from './helpers'

let cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

/** The server's handler mounted in an HTTP server of our own (as a user may), on port 0. */
async function mount(server: RatchetServer): Promise<string> {
  const http: Server = createHttpServer(server.handler)
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  cleanup.push(() => new Promise<void>((resolve) => http.close(() => resolve())))
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`
}

async function probe(url: string, path = '/readyz') {
  const response = await fetch(`${url}${path}`)
  return { status: response.status, body: (await response.json()) as { status: string; reason?: string } }
}

describe('/readyz', () => {
  it('is 503 until the executor started, then 200', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratchet-ready-'))
    const server = await createServer({
      tasks,
      databaseUrl: `file:${join(dir, 'ratchet.db')}`,
      port: 0,
      apiKeys: [{ name: 'test', secret: API_KEY }],
    })
    cleanup.push(async () => {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    })
    const url = await mount(server)
    expect(await probe(url)).toEqual({
      status: 503,
      body: { status: 'not ready', reason: 'the executor has not started' },
    })
    expect(await probe(url, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
    await server.start()
    expect(await probe(url)).toEqual({ status: 200, body: { status: 'ready' } })
  })

  it('is 503 naming the failure once the database fails, while /healthz stays 200', async () => {
    const t = await startTestServer(tasks, { pollIntervalMs: 50 })
    cleanup.push(() => t.close())
    expect(await probe(t.url)).toEqual({ status: 200, body: { status: 'ready' } })
    // The database goes away under the running server (closed from outside).
    await t.server.engine.storage.close()
    const { body } = await until(
      () => probe(t.url),
      (p) => p.status === 503,
    )
    expect(body.status).toBe('not ready')
    expect(body.reason).toMatch(
      /^the database is unreachable: (recover_leases|housekeep|claim) failed at \S+ \(The database connection is not open\) and no storage call has succeeded since$/,
    )
    expect(await probe(t.url, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
    // Enqueues fail too (500), and the failure is counted.
    const metrics = await (
      await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).text()
    expect(metrics).toMatch(
      /^ratchet_storage_errors_total\{operation="(recover_leases|housekeep|claim)"\} [1-9]/m,
    )
  })

  it('is 503 (draining) as soon as stop() begins, while attempts still run', async () => {
    const t = await startTestServer(tasks, { drainMs: 60_000 })
    const url = await mount(t.server)
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.waits.enqueue({})
    await until(
      () => client.executions.get(executionId),
      (e) => e.status === 'waiting',
    )
    const blocks = await client.tasks.blocks.enqueue({})
    await until(
      () => t.server.engine.executor.activeAttempts,
      (n) => n === 1,
    )
    expect(await probe(url)).toEqual({ status: 200, body: { status: 'ready' } })
    const stopped = t.close()
    expect(await probe(url)).toEqual({
      status: 503,
      body: { status: 'not ready', reason: 'draining: the server is stopping' },
    })
    // The running attempt is still draining (it runs until aborted).
    expect(t.server.engine.executor.activeAttempts).toBe(1)
    // The API still answers through our listener: cancelling the running attempt ends the drain.
    await createClient<typeof tasks>({ url, apiKey: API_KEY }).executions.cancel(blocks.executionId)
    await stopped
  })
})
