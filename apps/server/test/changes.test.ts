/**
 * `GET /api/changes`: every status change of every execution as server-sent events, resumable
 * with Last-Event-ID; and the hub-wide safety poll that wakes streams (changes and watch) when
 * another process writes the database.
 */
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, type ChangeEvent, type RatchetClient, type WatchEvent } from '@ratchet/client'
import { newExecutionId } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'
import { tasks } from './fixtures/read-tasks'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'
import { openSse, type SseEvent } from './sse'

let t: TestServer
let client: RatchetClient<typeof tasks>
beforeEach(async () => {
  t = await startTestServer(tasks)
  client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
})
afterEach(async () => {
  await t.close()
})

const line = (c: Pick<ChangeEvent, 'cursor' | 'executionId' | 'from' | 'to'>) =>
  `${c.cursor}:${c.executionId.slice(-4)}:${c.from ?? '-'}>${c.to}`
const fromSse = (e: SseEvent) => {
  const data = e.data as ChangeEvent
  expect(data.cursor).toBe(e.id)
  return line(data)
}

/** The change cursor now, as a Last-Event-ID: `0` (before every change) while there is none. */
async function cursorNow() {
  return (await t.server.engine.changeCursor()) || '0'
}

/** Every status change after the cursor `after`, read from the server's storage. */
async function changesAfter(after: string) {
  return (await t.server.engine.changesSince({ after, limit: 1000 })).map(line)
}

async function finished(id: string) {
  await until(
    () => client.executions.get(id),
    (e) => ['completed', 'failed', 'cancelled'].includes(e.status),
  )
}

describe('GET /api/changes', () => {
  it('streams changes from now; a dropped stream resumed with Last-Event-ID skips and repeats nothing', async () => {
    const before = (await client.tasks.stepper.enqueue({ steps: 0 })).executionId
    await finished(before)
    const start = await cursorNow()

    const first = await openSse(t.url, '/changes')
    expect(first.response.status).toBe(200)
    expect(first.response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const a = (await client.tasks.stepper.enqueue({ steps: 1 })).executionId
    const seen = await first.take(2) // a: queued, running
    first.close()
    await until(
      () => t.server.activeWatches,
      (n) => n === 0,
    )
    // Changes land while nobody listens.
    await finished(a)
    const b = (await client.tasks.stepper.enqueue({ steps: 0, fail: true })).executionId
    await finished(b)

    const resumed = await openSse(t.url, '/changes', { 'last-event-id': seen.at(-1)!.id! })
    const expected = await changesAfter(start)
    const rest = await resumed.take(expected.length - seen.length)
    resumed.close()
    expect([...seen, ...rest].map(fromSse)).toEqual(expected)
    expect(expected.some((l) => l.includes(before.slice(-4)))).toBe(false) // "from now"
    expect(rest.at(-1)!.data).toMatchObject({
      executionId: b,
      taskId: 'stepper',
      to: 'failed',
      parentId: null,
    })
    expect(rest.at(-1)!.data).toMatchObject({ rootId: b })
  })

  it('filters by taskId and by rootId', async () => {
    const start = await cursorNow()
    const byTask = await openSse(t.url, `/changes`, { 'last-event-id': start })
    const gateOnly = await openSse(t.url, `/changes?taskId=gate`, { 'last-event-id': start })
    const s = (await client.tasks.stepper.enqueue({ steps: 0 })).executionId
    const g = (await client.tasks.gate.enqueue({})).executionId
    const tree = await openSse(t.url, `/changes?rootId=${g}`, { 'last-event-id': start })
    await until(
      () => client.executions.get(g),
      (e) => e.status === 'waiting',
    )
    await finished(s)
    const gates = await gateOnly.take(3)
    expect(gates.map((e) => (e.data as ChangeEvent).executionId)).toEqual([g, g, g])
    expect(gates.map((e) => (e.data as ChangeEvent).to)).toEqual(['queued', 'running', 'waiting'])
    const inTree = await tree.take(3)
    expect(inTree.map(fromSse)).toEqual(gates.map(fromSse))
    const all = await byTask.take(6)
    expect(new Set(all.map((e) => (e.data as ChangeEvent).executionId))).toEqual(new Set([s, g]))
    for (const stream of [byTask, gateOnly, tree]) stream.close()
  })

  it.each([
    ['not a cursor', 'yesterday'],
    ['too long', '1'.repeat(21)],
    ["another database's (PostgreSQL's xid.seq)", '12.34'],
  ])('a Last-Event-ID that is %s → 400 naming it', async (_what, lastEventId) => {
    const response = await fetch(`${t.url}/api/changes`, {
      headers: { authorization: `Bearer ${API_KEY}`, 'last-event-id': lastEventId },
    })
    expect(response.status).toBe(400)
    const body = (await response.json()) as {
      code: string
      message: string
      data: { issues: { path: unknown[] }[] }
    }
    expect(body.code).toBe('INVALID_INPUT')
    expect(body.message).toMatch(/Last-Event-ID/)
    expect(body.data.issues[0]!.path).toEqual(['lastEventId'])
  })

  it('the client reconnects a dropped stream by itself and resumes after the last event', async () => {
    const start = await cursorNow()
    let cut = false
    // The first change stream the client opens breaks after its first event.
    const breaking = createClient<typeof tasks>({
      url: t.url,
      apiKey: API_KEY,
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        const url = input instanceof Request ? input.url : String(input)
        if (cut || !url.includes('/executions/changes') || !response.body) return response
        cut = true
        let sent = 0
        const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader()
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { value, done } = await reader.read()
            if (done) return controller.close()
            controller.enqueue(value)
            sent += new TextDecoder().decode(value).split('\nid:').length - 1
            if (sent >= 1) {
              await reader.cancel()
              controller.error(new TypeError('connection reset'))
            }
          },
        })
        return new Response(body, { status: response.status, headers: response.headers })
      },
    })
    const controller = new AbortController()
    const received: ChangeEvent[] = []
    const reading = (async () => {
      for await (const event of breaking.executions.changes({
        lastEventId: start,
        signal: controller.signal,
      }))
        received.push(event)
    })().catch(() => {})
    const id = (await client.tasks.stepper.enqueue({ steps: 2 })).executionId
    await finished(id)
    const expected = await changesAfter(start)
    await until(
      () => received.length,
      (n) => n >= expected.length,
    )
    controller.abort()
    await reading
    expect(cut).toBe(true)
    expect(received.map(line)).toEqual(expected)
  })
})

describe('the hub-wide safety poll', () => {
  it('idle streams cost one changeCursor read a second in all, not a read each', async () => {
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push((await client.tasks.gate.enqueue({})).executionId)
    for (const id of ids)
      await until(
        () => client.executions.get(id),
        (e) => e.status === 'waiting',
      )
    const watches = await Promise.all(ids.map((id) => openSse(t.url, `/executions/${id}/watch`)))
    for (const watch of watches) await watch.take(3)
    const streams = await Promise.all([openSse(t.url, '/changes'), openSse(t.url, '/changes?taskId=gate')])
    await until(
      () => t.server.activeWatches,
      (n) => n === 12,
    )
    // Count the reads the streams make from here on (the storage itself, instrumented).
    const storage = t.server.engine.storage
    const calls = { changeCursor: 0, history: 0, changesSince: 0 }
    for (const name of Object.keys(calls) as (keyof typeof calls)[]) {
      const original = storage[name].bind(storage) as (...args: unknown[]) => Promise<unknown>
      Object.assign(storage, {
        [name]: (...args: unknown[]) => {
          calls[name]++
          return original(...args)
        },
      })
    }
    await new Promise((resolve) => setTimeout(resolve, 3_500))
    expect(calls.history).toBe(0)
    expect(calls.changesSince).toBe(0)
    expect(calls.changeCursor).toBeGreaterThanOrEqual(2)
    expect(calls.changeCursor).toBeLessThanOrEqual(5)
    for (const stream of [...watches, ...streams]) stream.close()
  })

  it('wakes a change stream and a watch when another process writes the database', async () => {
    const other = openSqliteStorage({ filename: join(t.dir, 'ratchet.db') })
    try {
      const waiting = (await client.tasks.gate.enqueue({})).executionId
      await until(
        () => client.executions.get(waiting),
        (e) => e.status === 'waiting',
      )
      const stream = await openSse(t.url, '/changes')
      const watch = await openSse(t.url, `/executions/${waiting}/watch`)
      expect((await watch.take(3)).map((e) => (e.data as WatchEvent).status)).toEqual([
        'queued',
        'running',
        'waiting',
      ])

      // Another process enqueues an execution of a task this server does not run…
      const now = Date.now()
      const id = newExecutionId(now)
      await other.enqueue(
        [
          {
            id,
            taskId: 'elsewhere',
            input: '{}',
            maxAttempts: 1,
            maxRecoveries: 5,
            timeoutMs: 1000,
            backoff: { initialMs: 1, factor: 2, maxMs: 1 },
            priority: 0,
            idempotencyKey: null,
            runAt: now,
          },
        ],
        now,
      )
      const [event] = await stream.take(1)
      expect(event!.data).toMatchObject({ executionId: id, taskId: 'elsewhere', from: null, to: 'queued' })

      // …and cancels the waiting one behind this server's back: its watch hears of it and ends.
      const error = JSON.stringify({ name: 'CancelledError', message: 'elsewhere', retryable: false })
      await other.cancel(waiting, Date.now(), error)
      const [cancelled] = await watch.take(1)
      expect(cancelled!.data).toMatchObject({ status: 'cancelled', from: 'waiting' })
      expect(await watch.next()).toBeUndefined() // terminal: the watch ended
      const [streamed] = await stream.take(1)
      expect(streamed!.data).toMatchObject({ executionId: waiting, to: 'cancelled' })
      stream.close()
    } finally {
      await other.close()
    }
  })
})
