/**
 * `POST /api/executions/cancel-many` and `retry-many`: each id on its own, a result per id;
 * bad input (no ids, too many) is refused whole and changes nothing.
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

const UNKNOWN = '0198f0c4-8d2b-7000-8000-000000000000'

const post = (path: string, body: unknown) =>
  fetch(`${t.url}/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(body),
  })

const statusOf = async (id: string) => (await client.executions.get(id)).status

async function settled(id: string, status: string) {
  await until(
    () => statusOf(id),
    (s) => s === status,
  )
}

describe('bulk cancel and retry', () => {
  it('cancel-many: ok for each cancellable id, NOT_FOUND and CONFLICT for the others, in order', async () => {
    const waiting = (await client.tasks.gate.enqueue({})).executionId
    const queued = (await client.tasks.gate.enqueue({}, { delayMs: 60_000 })).executionId
    const done = (await client.tasks.stepper.enqueue({ steps: 0 })).executionId
    await settled(waiting, 'waiting')
    await settled(done, 'completed')

    const response = await post('/executions/cancel-many', { ids: [waiting, UNKNOWN, done, queued, 'nope'] })
    expect(response.status).toBe(200)
    const { results } = (await response.json()) as { results: unknown[] }
    expect(results).toEqual([
      { id: waiting, ok: true, status: 'cancelled' },
      {
        id: UNKNOWN,
        ok: false,
        error: { code: 'NOT_FOUND', message: expect.stringContaining(UNKNOWN) as unknown },
      },
      {
        id: done,
        ok: false,
        error: { code: 'CONFLICT', message: expect.stringContaining('completed') as unknown },
      },
      { id: queued, ok: true, status: 'cancelled' },
      { id: 'nope', ok: false, error: { code: 'NOT_FOUND', message: expect.any(String) as unknown } },
    ])
    expect(await statusOf(waiting)).toBe('cancelled')
    expect(await statusOf(queued)).toBe('cancelled')
    expect(await statusOf(done)).toBe('completed')
  })

  it('retry-many: failed and cancelled ones run again, others are CONFLICT or NOT_FOUND', async () => {
    const failed = (await client.tasks.stepper.enqueue({ steps: 0, fail: true })).executionId
    const done = (await client.tasks.stepper.enqueue({ steps: 0 })).executionId
    const cancelled = (await client.tasks.gate.enqueue({}, { delayMs: 60_000 })).executionId
    await client.executions.cancel(cancelled)
    await settled(failed, 'failed')
    await settled(done, 'completed')

    const results = await client.executions.retryMany([failed, done, UNKNOWN, cancelled])
    expect(results).toMatchObject([
      { id: failed, ok: true, status: 'queued' },
      { id: done, ok: false, error: { code: 'CONFLICT' } },
      { id: UNKNOWN, ok: false, error: { code: 'NOT_FOUND' } },
      { id: cancelled, ok: true, status: 'queued' },
    ])
    // The retried failure runs again (and fails again: it always does).
    await until(
      async () => (await client.executions.get(failed)).runs,
      (runs) => runs === 2,
    )
    const again = await client.executions.cancelMany([cancelled])
    expect(again).toEqual([{ id: cancelled, ok: true, status: 'cancelled' }])
  })

  it('no ids, too many, or a bad id → 400 naming ids, and nothing changes', async () => {
    const waiting = (await client.tasks.gate.enqueue({})).executionId
    await settled(waiting, 'waiting')
    const before = await client.executions.list()
    for (const path of ['/executions/cancel-many', '/executions/retry-many']) {
      for (const ids of [[], Array.from({ length: 101 }, () => waiting), [''], 'not-a-list']) {
        const response = await post(path, { ids })
        expect(response.status).toBe(400)
        const body = (await response.json()) as { code: string; data: { issues: { path: unknown[] }[] } }
        expect(body.code).toBe('INVALID_INPUT')
        expect(body.data.issues[0]!.path[0]).toBe('ids')
      }
    }
    expect(await client.executions.list()).toEqual(before)
    expect(await statusOf(waiting)).toBe('waiting')
  })
})
