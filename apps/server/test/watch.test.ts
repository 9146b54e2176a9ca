/**
 * `GET /api/executions/{id}/watch` over plain HTTP: a server-sent event stream of the
 * execution's status changes in order, resumable with `Last-Event-ID`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createClient, type WatchEvent } from '@ratchet/client'
import { tasks } from './fixtures/watch-tasks'
import { WatchHub } from '../src/watch'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

async function start() {
  t = await startTestServer(tasks)
  return { url: t.url, client: createClient<typeof tasks>({ url: t.url, apiKey: API_KEY }) }
}

interface SseEvent {
  event: string
  id: string | undefined
  data: unknown
}

/** Opens the watch stream and reads events from it as they arrive. */
async function openWatch(url: string, id: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const response = await fetch(`${url}/api/executions/${id}/watch`, {
    headers: { authorization: `Bearer ${API_KEY}`, ...headers },
    signal: controller.signal,
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  /** The next event, or undefined once the stream ended. Comments (keep-alives) are skipped. */
  async function next(): Promise<SseEvent | undefined> {
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const fields = block.split('\n').filter((line) => line && !line.startsWith(':'))
        if (fields.length === 0) continue
        const field = (name: string) =>
          fields.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart())
        const data = field('data').join('\n')
        return {
          event: field('event')[0] ?? 'message',
          id: field('id')[0],
          data: data ? JSON.parse(data) : undefined,
        }
      }
      const { value, done } = await reader.read()
      if (done) return undefined
      buffer += value
    }
  }
  /** Status changes (`message` events) until the stream ends. */
  async function rest(): Promise<SseEvent[]> {
    const events: SseEvent[] = []
    for (let e = await next(); e; e = await next()) if (e.event === 'message') events.push(e)
    return events
  }
  return { response, next, rest, close: () => controller.abort() }
}

const summary = (events: SseEvent[]) =>
  events.map((e) => {
    const data = e.data as WatchEvent
    return `${e.id}:${data.from ?? '-'}>${data.status}#${data.run}`
  })

describe('GET /api/executions/{id}/watch', () => {
  it('is an event stream of the status changes in order, ids equal to the history seqs', async () => {
    const { url, client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    const watch = await openWatch(url, executionId)
    expect(watch.response.status).toBe(200)
    expect(watch.response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    await until(
      () => client.executions.get(executionId),
      (e) => e.status === 'waiting',
    )
    await client.executions.signal(executionId, 'go', 'opened')
    const events = await watch.rest()

    expect(events.map((e) => (e.data as WatchEvent).status)).toEqual([
      'queued',
      'running',
      'waiting',
      'queued',
      'running',
      'completed',
    ])
    const history = (await client.executions.history(executionId)).items.filter((h) => h.event === 'status')
    expect(summary(events)).toEqual(history.map((h) => `${h.seq}:${h.from ?? '-'}>${h.to}#${h.run}`))
    for (const e of events) expect((e.data as WatchEvent).seq).toBe(Number(e.id))
    expect((events.at(-1)!.data as WatchEvent).execution).toMatchObject({
      status: 'completed',
      output: 'opened',
    })
  })

  it('resumes after Last-Event-ID: a dropped stream reopened mid-run skips and repeats nothing', async () => {
    const { url, client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({})
    const first = await openWatch(url, executionId)
    const seen: SseEvent[] = []
    while (seen.length < 3) {
      const event = await first.next()
      if (!event) throw new Error('the stream ended early')
      if (event.event === 'message') seen.push(event)
    }
    first.close() // queued, running, waiting seen; the connection drops
    await until(
      () => t!.server.activeWatches,
      (n) => n === 0,
    )

    // Changes land while nobody watches.
    await client.executions.signal(executionId, 'go', 'while away')
    await client.executions.wait(executionId, { timeoutMs: 10_000 })

    const resumed = await openWatch(url, executionId, { 'last-event-id': seen.at(-1)!.id! })
    expect(resumed.response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const rest = await resumed.rest()
    expect(rest.map((e) => (e.data as WatchEvent).status)).toEqual(['queued', 'running', 'completed'])
    const history = (await client.executions.history(executionId)).items.filter((h) => h.event === 'status')
    expect([...seen, ...rest].map((e) => Number(e.id))).toEqual(history.map((h) => h.seq))

    // Resuming from any event gives exactly the ones after it.
    for (const [index, from] of history.entries()) {
      const after = await (await openWatch(url, executionId, { 'last-event-id': String(from.seq) })).rest()
      expect(after.map((e) => Number(e.id))).toEqual(history.slice(index + 1).map((h) => h.seq))
    }
  })

  it('a long watch does not pile abort listeners up (no MaxListenersExceededWarning)', async () => {
    const { client } = await start()
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    try {
      const count = 15 // three changes each: far more wake-ups of one watch than 10 listeners
      const { executionId } = await client.tasks.rounds.enqueue({ rounds: count })
      const statuses: string[] = []
      const watching = (async () => {
        for await (const event of client.executions.watch(executionId)) statuses.push(event.status)
      })()
      for (let i = 1; i <= count; i++) {
        await until(
          () => statuses.filter((s) => s === 'waiting').length,
          (n) => n === i,
        )
        await client.executions.signal(executionId, `round-${i}`, i)
      }
      await watching
      expect(statuses.at(-1)).toBe('completed')
      expect(statuses.filter((s) => s === 'waiting')).toHaveLength(count)
      await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on a later tick
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
  })
})

describe('deadlines', () => {
  it('a deadline that expires a waiting execution ends its watch at once, whatever the poll interval', async () => {
    const { client } = await start()
    const { executionId } = await client.tasks.gate.enqueue({}, { deadlineMs: 300 })
    // A watcher that would look at the history again only after an hour: only the change feed
    // can tell it in time.
    const hub = new WatchHub({ engine: t!.server.engine, pollMs: 3_600_000 })
    const statuses: string[] = []
    for await (const event of hub.watch(executionId, undefined)) statuses.push(event.status)
    expect(statuses.slice(0, 3)).toEqual(['queued', 'running', 'waiting'])
    expect(statuses.at(-1)).toBe('timed_out')
  })
})
