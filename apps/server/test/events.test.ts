/** Typed events over real HTTP: validated against the server's events schema, recorded, fanned out to listeners. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, safe, type RatchetClient } from '@ratchet/client'
import { events, tasks } from './fixtures/event-tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'

let t: TestServer
let client: RatchetClient<typeof tasks, typeof events>

beforeEach(async () => {
  t = await startTestServer(tasks, { events })
  client = createClient<typeof tasks, typeof events>({ url: t.url, apiKey: API_KEY })
})
afterEach(() => t.close())

describe('events.publish', () => {
  it('one event starts every task that listens to its type, with the event as input', async () => {
    const published = await client.events.publish({
      type: 'user.signed-up',
      userId: 'u1',
      email: 'ada@example.com',
    })
    expect(published.type).toBe('user.signed-up')
    expect(published.executions.map((e) => e.taskId).sort()).toEqual(['create-profile', 'send-welcome'])
    const outputs = await Promise.all(
      published.executions.map(
        async (e) => (await client.executions.wait(e.executionId, { timeoutMs: 10_000 })).output,
      ),
    )
    expect(outputs).toEqual(expect.arrayContaining([{ welcomed: 'ada@example.com' }, { profile: 'u1' }]))
    const [recorded] = (await client.events.list({ type: 'user.signed-up' })).items
    expect(recorded).toMatchObject({
      id: published.eventId,
      event: { type: 'user.signed-up', userId: 'u1', email: 'ada@example.com' },
      executionIds: published.executions.map((e) => e.executionId),
    })
  })

  it('an event no task listens to is recorded, not an error', async () => {
    const published = await client.events.publish({ type: 'audit.ping' })
    expect(published.executions).toEqual([])
    expect((await client.events.list()).items.map((e) => e.id)).toEqual([published.eventId])
  })

  it('an invalid event is a 400 with the issues, and nothing is stored', async () => {
    const [error] = await safe(
      // @ts-expect-error totalCents must be a number
      client.events.publish({ type: 'order.placed', orderId: 'o1', totalCents: 'five' }),
    )
    expect(error).toMatchObject({ defined: true, status: 400 })
    if (!isDefinedError(error) || error.code !== 'INVALID_INPUT')
      throw new Error(`unexpected ${String(error)}`)
    expect(error.data.issues).toEqual([expect.objectContaining({ path: ['event', 'totalCents'] })])
    // REST too: a 400, and still nothing stored
    const response = await fetch(`${t.url}/api/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ event: { type: 'no.such-event' } }),
    })
    expect(response.status).toBe(400)
    const body = (await response.json()) as { code: string; data: { issues: { path: unknown[] }[] } }
    expect(body.code).toBe('INVALID_INPUT')
    expect(body.data.issues.length).toBeGreaterThan(0)
    expect((await client.events.list()).items).toEqual([])
    expect((await client.executions.list()).items).toEqual([])
  })

  it("an event the schema accepts but one listener's input rejects is a 400 naming that task; nothing is stored", async () => {
    const [error] = await safe(client.events.publish({ type: 'order.refunded', orderId: 'o1', reason: 'no' }))
    if (!isDefinedError(error) || error.code !== 'INVALID_INPUT')
      throw new Error(`unexpected ${String(error)}`)
    expect(error.message).toContain('task "record-refund" (on "order.refunded")')
    expect(error.data.issues).toEqual([expect.objectContaining({ path: ['input', 'reason'] })])
    // Neither listener started, and the event was not recorded: it is all or nothing.
    expect((await client.events.list()).items).toEqual([])
    expect((await client.executions.list()).items).toEqual([])
    const ok = await client.events.publish({ type: 'order.refunded', orderId: 'o1', reason: 'damaged' })
    expect(ok.executions.map((e) => e.taskId).sort()).toEqual(['notify-refund', 'record-refund'])
  })

  it('publishing the same event id again starts nothing new', async () => {
    const first = await client.events.publish(
      { type: 'order.placed', orderId: 'o7', totalCents: 100 },
      { id: 'evt-7' },
    )
    const again = await client.events.publish(
      { type: 'order.placed', orderId: 'o7', totalCents: 100 },
      { id: 'evt-7' },
    )
    expect(again).toEqual({ ...first, executions: [{ ...first.executions[0], created: false }] })
    expect((await client.executions.list({ taskId: 'ship-order' })).items).toHaveLength(1)
    expect((await client.events.list()).items).toHaveLength(1)
    const [conflict] = await safe(
      client.events.publish({ type: 'order.placed', orderId: 'o8', totalCents: 100 }, { id: 'evt-7' }),
    )
    expect(isDefinedError(conflict) && conflict.code).toBe('CONFLICT')
  })

  it('publishing the same event id with the keys in another order is a repeat, not a CONFLICT', async () => {
    const publish = (body: string) =>
      fetch(`${t.url}/api/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body,
      })
    const first = await publish(
      '{"event":{"type":"audit.note","details":{"who":"ada","what":{"a":1,"b":2}}},"id":"note-1"}',
    )
    expect(first.status).toBe(200)
    const { eventId } = (await first.json()) as { eventId: string }
    const again = await publish(
      '{"id":"note-1","event":{"details":{"what":{"b":2,"a":1},"who":"ada"},"type":"audit.note"}}',
    )
    expect(again.status).toBe(200)
    expect(await again.json()).toMatchObject({ eventId })
    const other = await publish('{"event":{"type":"audit.note","details":{"who":"bob"}},"id":"note-1"}')
    expect(other.status).toBe(409)
    expect((await client.events.list({ type: 'audit.note' })).items).toHaveLength(1)
  })

  it('tasks.list shows what each task listens to', async () => {
    const listed = await client.listTasks()
    expect(listed.find((x) => x.id === 'send-welcome')?.on).toEqual(['user.signed-up'])
  })
})

// Compile-time: only events of the server's schema can be published.
export function typeChecks() {
  // @ts-expect-error no such event type
  void client.events.publish({ type: 'user.deleted', userId: 'u1' })
  // @ts-expect-error missing field
  void client.events.publish({ type: 'user.signed-up', userId: 'u1' })
}
