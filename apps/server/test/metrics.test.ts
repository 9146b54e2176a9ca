/**
 * `/metrics` from outside: a real server on port 0 runs real executions (a success, a failure
 * retried, a timeout, a run recovered from a crashed worker's lease), then the scrape is parsed
 * as Prometheus text and its values and labels are checked; and who may scrape it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { TaskRegistry, prepareExecution } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'
import { createServer, type RatchetServer } from '../src/index'
import { tasks } from './fixtures/ops-tasks'
import { API_KEY, startTestServer, until } from './helpers'
import { parsePrometheusText, sampleValue } from './prom-text'

const auth = { authorization: `Bearer ${API_KEY}` }
let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

async function scrape(url: string) {
  const response = await fetch(`${url}/metrics`, { headers: auth })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parsePrometheusText(await response.text())
}

describe('/metrics', () => {
  it('counts real executions by task and status, with attempt durations, retries, recoveries, queue gauges and HTTP routes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratchet-metrics-'))
    const filename = join(dir, 'ratchet.db')
    // A worker that died holding a lease: its run is recovered when the server starts.
    const storage = openSqliteStorage({ filename })
    const lost = await prepareExecution(
      new TaskRegistry(tasks),
      { task: 'ok', input: { n: 20 } },
      Date.now(),
      1 << 20,
    )
    await storage.enqueue([lost], Date.now())
    await storage.claim({ owner: 'dead-worker', now: Date.now(), leaseMs: 60_000, limit: 1, taskIds: ['ok'] })
    await storage.close()

    const server: RatchetServer = await createServer({
      tasks,
      databaseUrl: `file:${filename}`,
      port: 0,
      apiKeys: [{ name: 'test', secret: API_KEY }],
      drainMs: 1000,
      // No SPA fallback: an unknown path stays a 404 whether or not the dashboard was built.
      dashboardDir: false,
    })
    const { url } = await server.start()
    cleanup.push(async () => {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    })
    const client = createClient<typeof tasks>({ url, apiKey: API_KEY })

    const ok = await client.tasks.ok.enqueue({ n: 1 }, { idempotencyKey: 'same' })
    const again = await client.tasks.ok.enqueue({ n: 1 }, { idempotencyKey: 'same' })
    expect(again.executionId).toBe(ok.executionId)
    const flaky = await client.tasks.flaky.enqueue({})
    const slow = await client.tasks.slow.enqueue({})
    // Delayed: queued, not due, so it is in the queue gauges but not in the depth.
    await client.tasks.ok.enqueue({ n: 2 }, { delayMs: 3_600_000 })
    expect(await client.executions.wait(ok.executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
    })
    expect(await client.executions.wait(flaky.executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      runs: 2,
    })
    expect(await client.executions.wait(slow.executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'timed_out',
    })
    expect(await client.executions.wait(lost.id, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: 41,
    })
    await fetch(`${url}/api/executions/${ok.executionId}`) // no key: 401
    await fetch(`${url}/nowhere`, { headers: auth }) // 404

    const samples = await scrape(url)
    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(samples, name, labels)
    expect(v('ratchet_executions_enqueued_total', { task: 'ok', result: 'created' })).toBe(2) // the lost one was enqueued before
    expect(v('ratchet_executions_enqueued_total', { task: 'ok', result: 'deduplicated' })).toBe(1)
    expect(v('ratchet_executions_enqueued_total', { task: 'flaky', result: 'created' })).toBe(1)
    expect(v('ratchet_executions_finished_total', { task: 'ok', status: 'completed' })).toBe(2)
    expect(v('ratchet_executions_finished_total', { task: 'flaky', status: 'completed' })).toBe(1)
    expect(v('ratchet_executions_finished_total', { task: 'slow', status: 'timed_out' })).toBe(1)
    expect(v('ratchet_attempt_retries_total', { task: 'flaky' })).toBe(1)
    expect(v('ratchet_lease_recoveries_total', { task: 'ok', result: 'requeued' })).toBe(1)
    // Attempt durations: a histogram per task and outcome.
    expect(v('ratchet_attempt_duration_seconds_count', { task: 'flaky', outcome: 'retried' })).toBe(1)
    expect(v('ratchet_attempt_duration_seconds_count', { task: 'flaky', outcome: 'completed' })).toBe(1)
    expect(v('ratchet_attempt_duration_seconds_count', { task: 'ok', outcome: 'completed' })).toBe(2)
    const timedOut = v('ratchet_attempt_duration_seconds_sum', { task: 'slow', outcome: 'timed_out' })!
    expect(timedOut).toBeGreaterThanOrEqual(0.1)
    expect(
      v('ratchet_attempt_duration_seconds_bucket', { task: 'slow', outcome: 'timed_out', le: '0.05' }),
    ).toBe(0)
    expect(
      v('ratchet_attempt_duration_seconds_bucket', { task: 'slow', outcome: 'timed_out', le: '+Inf' }),
    ).toBe(1)
    // Start delay: first attempts only (4 first runs: ok, flaky, slow, the recovered one was claimed before).
    const firstStarts = ['ok', 'flaky', 'slow'].map((task) =>
      v('ratchet_execution_start_delay_seconds_count', { task }),
    )
    expect(firstStarts).toEqual([1, 1, 1])
    // Queue gauges, read at scrape time: the delayed one is queued, not due.
    expect(v('ratchet_queued_executions', { task: 'ok' })).toBe(1)
    expect(v('ratchet_queue_depth', { task: 'ok' })).toBe(0)
    expect(v('ratchet_queue_depth', { task: 'flaky' })).toBe(0)
    expect(v('ratchet_queue_oldest_age_seconds', { task: 'ok' })).toBe(0)
    expect(v('ratchet_storage_errors_total')).toBeUndefined()
    expect(v('ratchet_running_attempts')).toBe(0)
    // HTTP: the procedure's path, never the URL (ids are not labels).
    expect(
      v('ratchet_http_requests_total', { route: 'executions.enqueue', method: 'POST', status: '200' }),
    ).toBe(5)
    expect(v('ratchet_http_requests_total', { route: 'api_unmatched', method: 'GET', status: '401' })).toBe(1)
    expect(v('ratchet_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1)
    expect(samples.some((s) => Object.values(s.labels).some((l) => l.includes(ok.executionId)))).toBe(false)
    expect(v('ratchet_http_request_duration_seconds_count', { route: 'executions.enqueue' })).toBe(5)
    // Default process metrics.
    expect(v('process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(v('nodejs_heap_size_used_bytes')).toBeGreaterThan(0)
  })

  it('reports the queue depth and the age of the oldest due execution while no worker takes them', async () => {
    // Concurrency 1 and a task that runs until the server stops: the others queue up behind it.
    const t = await startTestServer(tasks, { concurrency: 1 })
    cleanup.push(() => t.close())
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    await client.tasks.blocks.enqueue({})
    await client.tasks.blocks.enqueue({})
    await client.tasks.blocks.enqueue({})
    const samples = await until(
      () => scrape(t.url),
      (s) =>
        sampleValue(s, 'ratchet_running_attempts') === 1 &&
        sampleValue(s, 'ratchet_queue_depth', { task: 'blocks' }) === 2,
    )
    expect(sampleValue(samples, 'ratchet_queued_executions', { task: 'blocks' })).toBe(2)
    const later = await until(
      () => scrape(t.url),
      (s) => sampleValue(s, 'ratchet_queue_oldest_age_seconds', { task: 'blocks' })! >= 0.05,
    )
    expect(sampleValue(later, 'ratchet_queue_oldest_age_seconds', { task: 'blocks' })).toBeLessThan(30)
    expect(sampleValue(samples, 'ratchet_queue_depth', { task: 'ok' })).toBe(0)
  })

  it('needs an API key in key mode (the default), none in public mode, and is 404 when off', async () => {
    const keyed = await startTestServer(tasks)
    cleanup.push(() => keyed.close())
    expect((await fetch(`${keyed.url}/metrics`)).status).toBe(401)
    expect(
      (await fetch(`${keyed.url}/metrics`, { headers: { authorization: 'Bearer wrong-key-0123456789' } }))
        .status,
    ).toBe(401)
    expect((await fetch(`${keyed.url}/metrics`, { headers: auth })).status).toBe(200)

    const open = await startTestServer(tasks, { metrics: 'public' })
    cleanup.push(() => open.close())
    const response = await fetch(`${open.url}/metrics`)
    expect(response.status).toBe(200)
    expect(await response.text()).toContain('# TYPE ratchet_executions_enqueued_total counter')

    const off = await startTestServer(tasks, { metrics: 'off' })
    cleanup.push(() => off.close())
    expect((await fetch(`${off.url}/metrics`, { headers: auth })).status).toBe(404)
  })
})
