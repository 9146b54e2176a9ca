/** Retention from outside: a real server with a short retention forgets old executions. */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createClient, isDefinedError, safe } from '@ratchet/client'
import { task } from '@ratchet/core'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

const tasks = {
  echo: task({ id: 'echo', input: z.object({ n: z.number() }), run: ({ n }) => n }),
  keep: task({ id: 'keep', input: z.object({}), retentionMs: 'forever', run: () => 'kept' }),
}

let t: TestServer | undefined
afterEach(() => t?.close())

describe('retention on a real server', () => {
  it('old finished executions disappear from the API; their idempotency key is free again', async () => {
    t = await startTestServer(tasks, { retentionMs: 1_000, purgeIntervalMs: 200 })
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    // tasks.list shows each task's retention: its own, else the server's
    const listed = await client.listTasks()
    expect(Object.fromEntries(listed.map((task) => [task.id, task.retentionMs]))).toEqual({
      echo: 1_000,
      keep: 'forever',
    })
    const { executionId } = await client.tasks.echo.enqueue({ n: 1 }, { idempotencyKey: 'k1' })
    const first = await client.executions.wait(executionId)
    expect(first).toMatchObject({ status: 'completed', output: 1 })
    const kept = await client.executions.wait((await client.tasks.keep.enqueue({})).executionId)

    await until(
      () => safe(client.executions.get(first.id)),
      ([error]) => isDefinedError(error) && error.code === 'NOT_FOUND',
      10_000,
    )
    const [historyError] = await safe(client.executions.history(first.id))
    expect(isDefinedError(historyError) && historyError.code).toBe('NOT_FOUND')
    expect((await client.executions.list({ taskId: 'echo' })).items).toEqual([])
    // a task with retentionMs 'forever' keeps its executions
    expect(await client.executions.get(kept.id)).toMatchObject({ status: 'completed', output: 'kept' })

    const again = await client.tasks.echo.enqueue({ n: 1 }, { idempotencyKey: 'k1' })
    expect(again.created).toBe(true)
    expect(again.executionId).not.toBe(first.id)
  })
})
