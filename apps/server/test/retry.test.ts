/** `executions.retry` of a timed-out execution, over HTTP: it runs again, attempt 1 again, as a new run. */
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { runs, tasks } from './fixtures/watch-tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

describe('executions.retry of a timed_out execution', () => {
  it('ends timed_out with its one attempt, then a retry runs it again (run 2, attempt 1), which completes', async () => {
    t = await startTestServer(tasks)
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.slowFirstTime.enqueue({})
    expect(await client.executions.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'timed_out',
      runs: 1,
      attempt: 1,
      failures: 1,
      error: { name: 'TimeoutError' },
    })

    expect(await client.executions.retry(executionId)).toMatchObject({
      status: 'queued',
      runs: 1,
      attempt: 1,
      failures: 0,
      recoveries: 0,
    })
    expect(await client.tasks.slowFirstTime.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      runs: 2,
      attempt: 1,
      failures: 0,
      output: { run: 2 },
      error: null,
    })
    expect(runs.get(executionId)).toBe(2)
    const history = (await client.executions.history(executionId)).items.filter((h) => h.event === 'status')
    expect(history.map((h) => `${h.from ?? '-'}>${h.to}#${h.run}`)).toEqual([
      '->queued#0',
      'queued>running#1',
      'running>timed_out#1',
      'timed_out>queued#1',
      'queued>running#2',
      'running>completed#2',
    ])
    expect(history[3]?.detail).toMatchObject({ transition: 'rerun' })
  })

  it('over REST too: POST /api/executions/{id}/retry; retrying it again once completed is a 409', async () => {
    t = await startTestServer(tasks)
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.slowFirstTime.enqueue({})
    expect((await client.executions.wait(executionId, { timeoutMs: 10_000 })).status).toBe('timed_out')
    const retry = () =>
      fetch(`${t!.url}/api/executions/${executionId}/retry`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}` },
      })
    const response = await retry()
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ id: executionId, status: 'queued' })
    expect(await client.executions.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: { run: 2 },
    })
    const again = await retry()
    expect(again.status).toBe(409)
    expect(await again.json()).toMatchObject({ code: 'CONFLICT' })
  })
})
