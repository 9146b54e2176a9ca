/**
 * The read API over plain HTTP (REST at /api) and the typed client: list summaries, paginated
 * history and steps, task statistics and throughput, and their bad input.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, type RatchetClient } from '@ratchet/client'
import { tasks } from './fixtures/read-tasks'
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

const get = (path: string) =>
  fetch(`${t.url}/api${path}`, { headers: { authorization: `Bearer ${API_KEY}` } })

/** A 400 INVALID_INPUT whose issues name `field`. */
async function expectInvalid(path: string, field: string) {
  const response = await get(path)
  expect(response.status).toBe(400)
  const body = (await response.json()) as { code: string; data: { issues: { path: unknown[] }[] } }
  expect(body.code).toBe('INVALID_INPUT')
  expect(body.data.issues.map((i) => i.path[0])).toContain(field)
}

async function finished(id: string) {
  return until(
    () => client.executions.get(id),
    (e) => ['completed', 'failed'].includes(e.status),
  )
}

describe('GET /api/executions (summaries)', () => {
  it('a list of executions with large inputs and outputs returns neither', async () => {
    const blob = 'x'.repeat(200_000)
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await client.tasks.echo.enqueue({ blob })).executionId)
    for (const id of ids) await finished(id)

    const response = await get('/executions?taskId=echo')
    expect(response.status).toBe(200)
    const text = await response.text()
    expect(text.length).toBeLessThan(10_000)
    const body = JSON.parse(text) as { items: Record<string, unknown>[] }
    expect(body.items.map((e) => e.id)).toEqual([...ids].reverse())
    for (const item of body.items) {
      expect(item).not.toHaveProperty('input')
      expect(item).not.toHaveProperty('output')
      expect(item).toMatchObject({ status: 'completed', taskId: 'echo', error: null, attempt: 1 })
    }
    // The execution itself still has them.
    expect((await client.executions.get(ids[0]!)).output).toEqual({ blob })
  })

  it('an error in a summary is its name, message and code only', async () => {
    const { executionId } = await client.tasks.stepper.enqueue({ steps: 1, fail: true })
    await finished(executionId)
    const { items } = await client.executions.list({ taskId: 'stepper' })
    expect(items[0]!.error).toEqual({ name: 'TerminalError', message: 'asked to fail', code: 'ASKED' })
    expect((await client.executions.get(executionId)).error).toHaveProperty('stack')
  })

  it('rootId lists the root and every execution below it', async () => {
    const { executionId } = await client.tasks.gate.enqueue({})
    const { items } = await client.executions.list({ rootId: executionId })
    expect(items.map((e) => e.id)).toEqual([executionId])
  })
})

describe('GET /api/executions/{id}/history', () => {
  it('pages oldest first with cursor and limit; statusOnly leaves out steps', async () => {
    const { executionId } = await client.tasks.stepper.enqueue({ steps: 3 })
    await finished(executionId)
    const everything = (await client.executions.history(executionId, { limit: 1000 })).items
    expect(everything.filter((h) => h.event === 'step').map((h) => h.name)).toEqual(['s0', 's1', 's2'])

    const pages: unknown[][] = []
    let cursor: string | undefined
    for (;;) {
      const response = await get(
        `/executions/${executionId}/history?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      )
      expect(response.status).toBe(200)
      const page = (await response.json()) as { items: { seq: number }[]; nextCursor: string | null }
      pages.push(page.items)
      if (page.nextCursor === null) break
      expect(page.nextCursor).toBe(String(page.items.at(-1)!.seq))
      cursor = page.nextCursor
    }
    expect(pages.every((p) => p.length <= 2)).toBe(true)
    expect(pages.flat().map((h) => (h as { seq: number }).seq)).toEqual(everything.map((h) => h.seq))

    const statuses = await (await get(`/executions/${executionId}/history?statusOnly=true`)).json()
    expect((statuses as { items: { event: string }[] }).items.map((h) => h.event)).toEqual(
      everything.filter((h) => h.event === 'status').map(() => 'status'),
    )
    const notOnly = (await (await get(`/executions/${executionId}/history?statusOnly=false`)).json()) as {
      items: unknown[]
    }
    expect(notOnly.items).toHaveLength(everything.length)
  })

  it('bad limit or cursor → 400 naming the field; unknown id → 404', async () => {
    const { executionId } = await client.tasks.gate.enqueue({})
    await expectInvalid(`/executions/${executionId}/history?limit=0`, 'limit')
    await expectInvalid(`/executions/${executionId}/history?limit=1001`, 'limit')
    await expectInvalid(`/executions/${executionId}/history?cursor=abc`, 'cursor')
    await expectInvalid(`/executions/${executionId}/history?cursor=-1`, 'cursor')
    const unknown = await get('/executions/0198f0c4-8d2b-7000-8000-000000000000/history')
    expect(unknown.status).toBe(404)
  })
})

describe('GET /api/executions/{id}/steps', () => {
  it('pages the durable record by position, values parsed', async () => {
    const { executionId } = await client.tasks.stepper.enqueue({ steps: 5, fail: true })
    await finished(executionId)
    const first = await client.executions.steps(executionId, { limit: 2 })
    expect(first.items.map((s) => [s.position, s.name, s.kind, s.status, s.value])).toEqual([
      [0, 's0', 'step', 'done', 0],
      [1, 's1', 'step', 'done', 1],
    ])
    expect(first.items[0]!.createdAt).toBeInstanceOf(Date)
    expect(first.nextCursor).toBe('1')
    const rest = await client.executions.steps(executionId, { cursor: first.nextCursor!, limit: 10 })
    expect(rest.items.map((s) => s.name)).toEqual(['s2', 's3', 's4'])
    expect(rest.nextCursor).toBeNull()

    const response = await get(`/executions/${executionId}/steps?limit=1&cursor=3`)
    expect(((await response.json()) as { items: { name: string }[] }).items.map((s) => s.name)).toEqual([
      's4',
    ])
    await expectInvalid(`/executions/${executionId}/steps?limit=0`, 'limit')
    await expectInvalid(`/executions/${executionId}/steps?limit=501`, 'limit')
    await expectInvalid(`/executions/${executionId}/steps?cursor=x`, 'cursor')
    expect((await get('/executions/0198f0c4-8d2b-7000-8000-000000000000/steps')).status).toBe(404)
  })
})

describe('GET /api/stats/*', () => {
  it('stats/tasks counts executions by task and status, with the due queue', async () => {
    const done = (await client.tasks.stepper.enqueue({ steps: 0 })).executionId
    const failed = (await client.tasks.stepper.enqueue({ steps: 0, fail: true })).executionId
    await finished(done)
    await finished(failed)
    const waiting = (await client.tasks.gate.enqueue({})).executionId
    await until(
      () => client.executions.get(waiting),
      (e) => e.status === 'waiting',
    )
    await client.tasks.gate.enqueue({}, { delayMs: 60_000 }) // queued, not due

    const response = await get('/stats/tasks')
    expect(response.status).toBe(200)
    const stats = await client.taskStats()
    const byTask = Object.fromEntries(stats.map((s) => [s.taskId, s]))
    expect(Object.keys(byTask).sort()).toEqual(['echo', 'gate', 'stepper'])
    expect(byTask.echo).toMatchObject({
      counts: { queued: 0, completed: 0 },
      queueDepth: 0,
      oldestQueuedAt: null,
    })
    expect(byTask.stepper!.counts).toMatchObject({ completed: 1, failed: 1, queued: 0 })
    expect(byTask.gate).toMatchObject({
      counts: { waiting: 1, queued: 1 },
      queueDepth: 0,
      oldestQueuedAt: null,
    })
  })

  it('stats/throughput buckets ends and starts; bad windows → 400 naming the field', async () => {
    const from = new Date(Date.now() - 1_000)
    const a = (await client.tasks.stepper.enqueue({ steps: 0 })).executionId
    const b = (await client.tasks.stepper.enqueue({ steps: 0, fail: true })).executionId
    await finished(a)
    await finished(b)
    const to = new Date(Date.now() + 1_000)
    const result = await client.throughput({ from, to, buckets: 4 })
    expect(result.items).toHaveLength(4)
    expect(result.bucketMs).toBe(Math.ceil((to.getTime() - from.getTime()) / 4))
    expect(result.items[0]!.at).toEqual(from)
    const sum = (key: 'completed' | 'failed' | 'started') => result.items.reduce((n, i) => n + i[key], 0)
    expect([sum('completed'), sum('failed'), sum('started')]).toEqual([1, 1, 2])
    const onlyEcho = await client.throughput({ taskId: 'echo', from, to })
    expect(onlyEcho.items).toHaveLength(60)
    expect(onlyEcho.items.every((i) => i.completed + i.failed + i.started === 0)).toBe(true)

    const iso = (d: Date) => encodeURIComponent(d.toISOString())
    const rest = await get(`/stats/throughput?from=${iso(from)}&to=${iso(to)}&buckets=2`)
    expect(rest.status).toBe(200)
    expect(((await rest.json()) as { items: unknown[] }).items).toHaveLength(2)
    await expectInvalid(`/stats/throughput?from=${iso(to)}&to=${iso(from)}`, 'to')
    await expectInvalid(`/stats/throughput?from=${iso(from)}&to=${iso(to)}&buckets=0`, 'buckets')
    await expectInvalid(`/stats/throughput?from=yesterday&to=${iso(to)}`, 'from')
    await expectInvalid(`/stats/throughput?to=${iso(to)}`, 'from')
  })
})
