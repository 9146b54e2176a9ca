/**
 * The server on PostgreSQL (DATABASE_URL=postgres://…), over HTTP on ephemeral ports, on a
 * database of its own (`ratchet_t_<random>`, dropped when the file passed): a workflow end to
 * end; two servers on one database, where a wait, a watch and a change stream on one see at
 * once what the other did (LISTEN/NOTIFY, not the poll); and a database outage: /readyz is 503,
 * API calls are 503 STORAGE_UNAVAILABLE (retryable, one quiet log line), and everything works
 * again once the database is back. Skipped, with one line saying why, when PostgreSQL is
 * unreachable.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, isRetryableError, safe } from '@ratchet/client'
import type { Logger } from '@ratchet/core'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { createServer, type RatchetServer, type ServerOptions } from '../src/index'
import { replicaTasks } from './fixtures/replica-tasks'
import { API_KEY, until } from './helpers'
import { captureLogger } from './log-capture'
import { openSse } from './sse'
import { startTcpProxy, type TcpProxy } from './tcp-proxy'

const pg = await usePostgresTestDatabase()

type Tasks = ReturnType<typeof replicaTasks>

interface Started {
  server: RatchetServer
  url: string
  client: ReturnType<typeof createClient<Tasks>>
}

const servers: RatchetServer[] = []
const proxies: TcpProxy[] = []

/** A server named `name` (its tasks say so in their output) on the test database. */
async function start(name: string, options: Partial<ServerOptions> = {}): Promise<Started> {
  const server = await createServer({
    tasks: replicaTasks(name),
    databaseUrl: pg.url,
    port: 0,
    apiKeys: [{ name: 'test', secret: API_KEY }],
    drainMs: 1_000,
    dashboardDir: false,
    shortSleepMs: 0,
    pgPoolSize: 4,
    ...options,
  })
  servers.push(server)
  const { url } = await server.start()
  return { server, url, client: createClient<Tasks>({ url, apiKey: API_KEY }) }
}

async function readyz(url: string): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const response = await fetch(`${url}/readyz`)
  return { status: response.status, body: (await response.json()) as { status: string; reason?: string } }
}

describe.skipIf(!pg.available)('the server on PostgreSQL', () => {
  beforeEach(() => pg.reset())
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()))
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  it('runs a workflow end to end over HTTP: a step, a durable sleep, a signal and children', async () => {
    const { url, client } = await start('a')
    expect(await readyz(url)).toEqual({ status: 200, body: { status: 'ready' } })
    const { executionId } = await client.tasks.onboard.enqueue({ user: 'ada' })
    await client.executions.signal(executionId, 'approval', { ok: true })
    const done = await client.executions.wait(executionId, { timeoutMs: 20_000 })
    expect(done).toMatchObject({
      status: 'completed',
      output: { user: 'ada', plan: 'pro', approved: true, notified: 3 },
    })
    const children = await client.executions.list({ parentId: executionId })
    expect(children.items.map((c) => c.status)).toEqual(['completed', 'completed', 'completed'])
    const history = (await client.executions.history(executionId, { statusOnly: true })).items
    // It parked for the sleep (and maybe for its children), and came back.
    expect(history.filter((h) => h.to === 'waiting').length).toBeGreaterThanOrEqual(1)
    expect(history.at(-1)).toMatchObject({ from: 'running', to: 'completed' })
  })

  it('two servers on one database: a wait, a watch and a change stream on A see at once what B ran', async () => {
    // A serves the API only (its executor is stopped), so B runs everything. A's own poll for
    // other processes' changes is 30 s: only B's notices can wake A's streams in time.
    const a = await start('a', { changePollMs: 30_000 })
    await a.server.engine.stop({ drainMs: 0 })
    // How soon B picks up A's enqueue is the executor's business (its notices or its poll):
    // a short poll here keeps this test about A's side.
    await start('b', { pollIntervalMs: 200 })

    const changes = await openSse(a.url, '/changes?taskId=stamp')
    const enqueuedAt = Date.now()
    const { executionId } = await a.client.tasks.stamp.enqueue({ delayMs: 300 })
    const watch = await openSse(a.url, `/executions/${executionId}/watch`)
    const waited = fetch(`${a.url}/api/executions/${executionId}/wait`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ timeoutMs: 20_000 }),
    }).then(async (response) => ({
      at: Date.now(),
      status: response.status,
      body: (await response.json()) as { status: string; output: unknown; finishedAt: string },
    }))
    const client = a.client.executions
      .wait(executionId, { timeoutMs: 20_000 })
      .then((e) => ({ e, at: Date.now() }))

    const watched = await watch.take(3)
    const watchedAt = Date.now()
    expect(watched.map((e) => (e.data as { status: string }).status)).toEqual([
      'queued',
      'running',
      'completed',
    ])
    const rest = await waited
    expect(rest).toMatchObject({ status: 200, body: { status: 'completed', output: { ranOn: 'b' } } })
    const typed = await client
    expect(typed.e).toMatchObject({ status: 'completed', output: { ranOn: 'b' } })
    const streamed = await changes.take(3)
    const streamedAt = Date.now()
    expect(streamed.map((e) => (e.data as { executionId: string; to: string }).to)).toEqual([
      'queued',
      'running',
      'completed',
    ])
    watch.close()
    changes.close()

    // A heard of the end from B's notice, not from its own 30 s poll.
    const finishedAt = new Date(rest.body.finishedAt).getTime()
    expect(finishedAt - enqueuedAt).toBeLessThan(5_000)
    for (const at of [rest.at, typed.at, watchedAt, streamedAt]) expect(at - finishedAt).toBeLessThan(2_000)
  })

  it('a database outage: /readyz 503 and API calls 503 STORAGE_UNAVAILABLE (retryable, one quiet line each); all well once it is back', async () => {
    const target = new URL(pg.url)
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
    proxies.push(proxy)
    const viaProxy = new URL(pg.url)
    viaProxy.host = `127.0.0.1:${proxy.port}`
    const { logger, lines } = captureLogger()
    const { url, client } = await start('a', {
      databaseUrl: viaProxy.toString(),
      logger: logger as unknown as Logger,
      pollIntervalMs: 500,
    })
    const before = (await client.tasks.stamp.enqueue({})).executionId
    expect(await client.executions.wait(before, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed' })

    await proxy.down()
    const down = await until(
      () => readyz(url),
      (r) => r.status === 503,
    )
    expect(down.body).toMatchObject({
      status: 'not ready',
      reason: expect.stringMatching(/the database is unreachable/) as string,
    })

    const response = await fetch(`${url}/api/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ taskId: 'stamp', input: {} }),
    })
    expect(response.status).toBe(503)
    expect(await response.json()).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      status: 503,
      data: { retryable: true },
    })
    const [error] = await safe(client.tasks.stamp.enqueue({}))
    expect(isDefinedError(error) && error.code).toBe('STORAGE_UNAVAILABLE')
    expect(isRetryableError(error)).toBe(true)
    const [notFound] = await safe(client.executions.get('nope'))
    expect(isRetryableError(notFound)).toBe(false) // a 4xx never is (NOT_FOUND before any read)

    // Each refused request: one warn line with the driver's reason, no stack; no error line.
    const refused = lines.filter(
      (l) => l.msg === 'request refused: the database is unreachable (503, retryable)',
    )
    expect(refused.length).toBeGreaterThanOrEqual(2)
    for (const line of refused) {
      expect(line).toMatchObject({ level: 40, code: 'STORAGE_UNAVAILABLE', procedure: 'executions.enqueue' })
      expect(line.reason).toEqual(expect.any(String))
      expect(line).not.toHaveProperty('err')
    }
    expect(lines.filter((l) => l.msg === 'request failed' || l.msg === 'unhandled request error')).toEqual([])

    await proxy.up()
    await until(
      () => readyz(url),
      (r) => r.status === 200,
      20_000,
    )
    const after = (await client.tasks.stamp.enqueue({})).executionId
    expect(await client.executions.wait(after, { timeoutMs: 20_000 })).toMatchObject({
      status: 'completed',
      output: { ranOn: 'a' },
    })
  })
})
