/**
 * Flow control from outside, against real server processes. Pausing and resuming a task's
 * queue as an operator does (`ratchet tasks pause|resume`), work arriving all along; the pause
 * outlives a restart; on PostgreSQL a pause made through one replica holds on another, whose
 * resume is heard at once. Debounce: a burst of concurrent enqueues over HTTP, on one server and
 * spread over two replicas, makes one execution.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, safe } from '@ratchet/client'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { killChildServers, startChildServer } from './child-server'
import { json, ratchet } from './cli-run'
import type { tasks } from './fixtures/cli-tasks'
import { API_KEY, until } from './helpers'
import { parsePrometheusText, sampleValue } from './prom-text'

const TASKS = join(import.meta.dirname, 'fixtures/cli-tasks.ts')
const pg = await usePostgresTestDatabase()
const dir = mkdtempSync(join(tmpdir(), 'ratchet-pause-'))
afterEach(() => killChildServers())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function start(database: { databaseFile: string } | { databaseUrl: string }) {
  const server = await startChildServer({
    ...database,
    tasksModule: TASKS,
    env: { RATCHET_API_KEYS: `test:${API_KEY}` },
  })
  const client = createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
  const cli = (...args: string[]) => ratchet(args, { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY })
  return { server, client, cli }
}

async function pausedGauge(url: string, task: string): Promise<number | undefined> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
  return sampleValue(parsePrometheusText(await response.text()), 'ratchet_task_paused', { task })
}

describe('pausing a task’s queue', () => {
  it('a paused task accepts enqueues and starts nothing, other tasks run, a resume starts the backlog; it outlives a restart', async () => {
    const databaseFile = join(dir, 'pause.db')
    let { server, client, cli } = await start({ databaseFile })

    const paused = await cli('tasks', 'pause', 'echo')
    expect(paused.code, paused.stderr).toBe(0)
    expect(paused.stdout).toBe('paused echo\n')
    const held = await Promise.all([1, 2, 3].map((n) => client.tasks.echo.enqueue({ message: `m${n}` })))
    // Another task is not held up behind it.
    const other = await client.tasks.flaky.enqueue({ failures: 0 })
    expect(await client.executions.wait(other.executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
    })
    for (const { executionId } of held)
      expect((await client.executions.get(executionId)).status).toBe('queued')

    const listed = await cli('tasks')
    expect(listed.stdout).toMatch(/^echo\s+paused /m)
    expect(listed.stdout).toMatch(/^flaky\s+running /m)
    const stats = await client.taskStats()
    expect(stats.find((s) => s.taskId === 'echo')!.pausedAt).toBeInstanceOf(Date)
    expect(stats.find((s) => s.taskId === 'flaky')!.pausedAt).toBeNull()
    expect(await pausedGauge(server.url, 'echo')).toBe(1)
    expect(await pausedGauge(server.url, 'flaky')).toBe(0)

    // The pause is the database's: a restarted server keeps it.
    server.process.kill('SIGTERM')
    await server.exited
    ;({ server, client, cli } = await start({ databaseFile }))
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const { executionId } of held)
      expect((await client.executions.get(executionId)).status).toBe('queued')

    const resumed = await cli('tasks', 'resume', 'echo', '--json')
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(json(resumed)).toEqual({ taskId: 'echo', pausedAt: null })
    for (const { executionId } of held)
      expect(await client.executions.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
        status: 'completed',
      })
    expect(await pausedGauge(server.url, 'echo')).toBe(0)
  }, 60_000)

  it('an unknown task is UNKNOWN_TASK (404; the CLI exits 1) and changes nothing', async () => {
    const { client, cli } = await start({ databaseFile: join(dir, 'unknown.db') })
    const [error] = await safe(client.pauseTask('no-such-task'))
    expect(isDefinedError(error) && error.code).toBe('UNKNOWN_TASK')
    const result = await cli('tasks', 'pause', 'no-such-task')
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('unknown task "no-such-task"')
    expect((await client.taskStats()).filter((s) => s.pausedAt !== null)).toEqual([])
  }, 30_000)

  it.skipIf(!pg.available)(
    'on PostgreSQL: paused through one replica, held by another; a resume is heard by every replica at once',
    async () => {
      await pg.reset()
      // A long safety poll: only a notification can start the work soon.
      const env = { RATCHET_API_KEYS: `test:${API_KEY}`, RATCHET_POLL_INTERVAL_MS: '60000' }
      // B's one slot is taken by a long run, so that only A can claim what B enqueues.
      const b = await startChildServer({
        databaseUrl: pg.url,
        tasksModule: TASKS,
        env: { ...env, RATCHET_CONCURRENCY: '1' },
      })
      const clientB = createClient<typeof tasks>({ url: b.url, apiKey: API_KEY })
      const busy = await clientB.tasks.slow.enqueue({ ms: 30_000 }, { timeoutMs: 60_000 })
      await until(
        () => clientB.executions.get(busy.executionId),
        (e) => e.status === 'running',
        5_000,
      )
      const a = await startChildServer({ databaseUrl: pg.url, tasksModule: TASKS, env })
      const clientA = createClient<typeof tasks>({ url: a.url, apiKey: API_KEY })

      await clientB.pauseTask('echo')
      // A hears the enqueue's wake-up, and must hold off.
      const { executionId } = await clientB.tasks.echo.enqueue({ message: 'held' })
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      expect((await clientA.executions.get(executionId)).status).toBe('queued')
      await clientB.resumeTask('echo')
      const done = await until(
        () => clientA.executions.get(executionId),
        (e) => e.status === 'completed',
        5_000,
      )
      expect(done.output).toEqual({ echoed: 'held' })
    },
    60_000,
  )
})

describe('debounce', () => {
  it('100 concurrent enqueues of one key over HTTP: every caller gets one execution, which runs once', async () => {
    const { client } = await start({ databaseFile: join(dir, 'debounce.db') })
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, revision) =>
        client.tasks.syncAccount.enqueue({ account: 'acme', revision }),
      ),
    )
    const ids = new Set(results.map((r) => r.executionId))
    expect(ids.size).toBe(1)
    const [id] = ids
    const done = await client.executions.wait(id!, { timeoutMs: 10_000 })
    expect(done).toMatchObject({ status: 'completed', output: { account: 'acme' } })
    expect((await client.executions.list({ taskId: 'sync-account' })).items).toHaveLength(1)
    // One after the other, the last enqueue's input is the one that runs.
    const burst = []
    for (let revision = 1; revision <= 5; revision++)
      burst.push(await client.tasks.syncAccount.enqueue({ account: 'globex', revision }))
    expect(new Set(burst.map((r) => r.executionId)).size).toBe(1)
    expect(await client.executions.wait(burst[0]!.executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: { account: 'globex', revision: 5 },
    })
    // An idempotency key is refused, naming the field, and nothing is stored.
    const [error] = await safe(
      client.tasks.syncAccount.enqueue({ account: 'acme', revision: 1 }, { idempotencyKey: 'k' }),
    )
    expect(isDefinedError(error) && error.code).toBe('INVALID_INPUT')
    expect(isDefinedError(error) && error.data).toMatchObject({
      issues: [{ path: ['options', 'idempotencyKey'] }],
    })
    expect((await client.executions.list({ taskId: 'sync-account' })).items).toHaveLength(2)
  }, 60_000)

  it.skipIf(!pg.available)(
    'on PostgreSQL, a burst spread over two replicas makes one execution',
    async () => {
      await pg.reset()
      const env = { RATCHET_API_KEYS: `test:${API_KEY}` }
      const servers = await Promise.all(
        [0, 1].map(() => startChildServer({ databaseUrl: pg.url, tasksModule: TASKS, env })),
      )
      const clients = servers.map((s) => createClient<typeof tasks>({ url: s.url, apiKey: API_KEY }))
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, revision) =>
          clients[revision % 2]!.tasks.syncAccount.enqueue({ account: 'acme', revision }),
        ),
      )
      expect(new Set(results.map((r) => r.executionId)).size).toBe(1)
      expect(results.filter((r) => r.created)).toHaveLength(1)
      const done = await clients[0]!.executions.wait(results[0]!.executionId, { timeoutMs: 10_000 })
      expect(done.status).toBe('completed')
      expect((await clients[1]!.executions.list({ taskId: 'sync-account' })).items).toHaveLength(1)
    },
    60_000,
  )
})
