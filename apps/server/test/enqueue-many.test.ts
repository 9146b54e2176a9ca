/**
 * `executions.enqueueMany` (`POST /api/executions/batch`): many executions in one request and
 * one transaction, validated all or nothing, through the typed client and over REST.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, safe, type RatchetClient } from '@ratchet/client'
import { tasks } from './fixtures/tasks'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

let t: TestServer
let client: RatchetClient<typeof tasks>
beforeEach(async () => {
  t = await startTestServer(tasks, { maxPayloadBytes: 4096 })
  client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
})
afterEach(async () => {
  await t.close()
})

const post = (path: string, body: unknown) =>
  fetch(`${t.url}/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(body),
  })

/** Every execution stored so far (one page is enough for these tests). */
const stored = async () => (await client.executions.list({ limit: 500 })).items

describe('enqueueMany', () => {
  it('enqueues 500 executions of one task in one request, in order, and they all run', async () => {
    const items = Array.from({ length: 500 }, (_, i) => ({ input: { message: `m${i}` } }))
    const results = await client.tasks.echo.enqueueMany(items)
    expect(results).toHaveLength(500)
    expect(results.every((r) => r.created && r.execution.taskId === 'echo')).toBe(true)
    // A summary: no payloads.
    expect(results[0]!.execution).not.toHaveProperty('input')
    expect(new Set(results.map((r) => r.executionId)).size).toBe(500)
    const last = await client.tasks.echo.wait(results[499]!.executionId)
    expect(last.output).toEqual({ echoed: 'm499' })
    const first = await client.tasks.echo.get(results[0]!.executionId)
    expect(first.input).toEqual({ message: 'm0' })
    await until(stored, (rows) => rows.length === 500 && rows.every((r) => r.status === 'completed'))
  })

  it('mixes tasks, and an idempotency key works per item (a repeat in the batch is the same execution)', async () => {
    const results = await client.executions.enqueueMany([
      { taskId: 'echo', input: { message: 'a' }, options: { idempotencyKey: 'k1' } },
      { taskId: 'configure', input: { account: 'x', settings: {} } },
      { taskId: 'echo', input: { message: 'a' }, options: { idempotencyKey: 'k1' } },
    ])
    expect(results.map((r) => [r.execution.taskId, r.created])).toEqual([
      ['echo', true],
      ['configure', true],
      ['echo', false],
    ])
    expect(results[2]!.executionId).toBe(results[0]!.executionId)
    const again = await client.tasks.echo.enqueueMany([
      { input: { message: 'a' }, options: { idempotencyKey: 'k1' } },
    ])
    expect(again[0]).toMatchObject({ executionId: results[0]!.executionId, created: false })
  })

  it('one invalid item refuses the whole batch with INVALID_INPUT naming items.<index>, and stores nothing', async () => {
    const [error] = await safe(
      client.executions.enqueueMany([
        { taskId: 'echo', input: { message: 'ok' } },
        { taskId: 'echo', input: { message: 'ok' } },
        { taskId: 'echo', input: { message: 'ok', email: 'not-an-email' } },
      ]),
    )
    expect(isDefinedError(error) && error.code).toBe('INVALID_INPUT')
    if (!isDefinedError(error) || error.code !== 'INVALID_INPUT') throw new Error('expected INVALID_INPUT')
    expect(error.message).toMatch(/^items\.2: invalid input for task "echo"/)
    expect(error.data.issues).toEqual([expect.objectContaining({ path: ['items', 2, 'input', 'email'] })])
    expect(await stored()).toEqual([])
  })

  it('an unknown task or an oversized input in one item refuses the batch, naming the item', async () => {
    const [unknown] = await safe(
      client.executions.enqueueMany([
        { taskId: 'echo', input: { message: 'ok' } },
        { taskId: 'nope', input: {} },
      ]),
    )
    expect(isDefinedError(unknown) && unknown.code).toBe('UNKNOWN_TASK')
    expect((unknown as Error).message).toMatch(/^items\.1: /)
    const [large] = await safe(
      client.executions.enqueueMany([
        { taskId: 'echo', input: { message: 'ok' } },
        { taskId: 'blob', input: { data: 'x'.repeat(5000) } },
      ]),
    )
    expect(isDefinedError(large) && large.code).toBe('PAYLOAD_TOO_LARGE')
    if (!isDefinedError(large) || large.code !== 'PAYLOAD_TOO_LARGE')
      throw new Error('expected PAYLOAD_TOO_LARGE')
    expect(large.data.field).toBe('items.1.input')
    expect(await stored()).toEqual([])
  })

  it('REST: POST /api/executions/batch; an empty or oversized batch is a 400 naming items', async () => {
    const ok = await post('/executions/batch', { items: [{ taskId: 'echo', input: { message: 'rest' } }] })
    expect(ok.status).toBe(200)
    const body = (await ok.json()) as {
      results: { execution: { id: string; status: string }; created: boolean }[]
    }
    expect(body.results).toEqual([
      { execution: expect.objectContaining({ status: 'queued' }) as unknown, created: true },
    ])
    for (const items of [
      [],
      Array.from({ length: 1001 }, () => ({ taskId: 'echo', input: { message: '' } })),
    ]) {
      const refused = await post('/executions/batch', { items })
      expect(refused.status).toBe(400)
      const error = (await refused.json()) as { code: string; data: { issues: { path: unknown[] }[] } }
      expect(error.code).toBe('INVALID_INPUT')
      expect(error.data.issues[0]!.path).toEqual(['items'])
    }
    expect(await stored()).toHaveLength(1)
  })
})
