/**
 * An app deploys new and changed durable functions while the server runs: the server learns
 * them from the app's manifest again, when an enqueue names an id it does not know and when an
 * operator runs `ratchet tasks refresh`, without a restart. Real app and server processes.
 */
import { describe, expect, it } from 'vitest'
import { isDefinedError, safe } from '@ratchet/client'
import { json, ratchet } from './cli-run'
import { API_KEY } from './helpers'
import { useServerlessHarness } from './serverless-harness'

const harness = useServerlessHarness()

describe('an app deploys functions while the server runs', () => {
  it('an enqueue of a function deployed since the server started fetches the manifest again and runs it', async () => {
    const { port, server, client } = await harness.start()
    // The server knows release 1: no refund.
    expect((await client.listTasks()).map((t) => t.id)).not.toContain('refund')
    await harness.killApps()
    await harness.startApp(port, { release: 2 })

    const { executionId } = await client.tasks.refund.enqueue({ order: 'A-1', amountCents: 500 })
    const done = await client.executions.wait(executionId, { timeoutMs: 30_000 })
    expect(done).toMatchObject({ status: 'completed', output: { id: 'refund:A-1:500', release: 2 } })
    // Its input is checked at the server against the new function's schema.
    const [error] = await safe(client.tasks.refund.enqueue({ order: 'A-2', amountCents: -1 }))
    expect(isDefinedError(error) && error.code).toBe('INVALID_INPUT')
    expect((await client.listTasks()).map((t) => t.id)).toContain('refund')
    expect(server.logs).toContainEqual(
      expect.objectContaining({ msg: 'task source refreshed', added: ['refund'], level: 30 }),
    )
  }, 60_000)

  it('an id no app offers is still UNKNOWN_TASK (404), and nothing is stored', async () => {
    const { client } = await harness.start()
    const [error] = await safe(client.rpc.executions.enqueue({ taskId: 'no-such-function', input: {} }))
    expect(isDefinedError(error) && error.code).toBe('UNKNOWN_TASK')
    expect((await client.executions.list()).items).toEqual([])
  }, 60_000)

  it('`ratchet tasks refresh`: a clear error (exit 3) while the app is down, then new and changed functions', async () => {
    const { port, server, client } = await harness.start()
    const cli = (...args: string[]) => ratchet(args, { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY })
    const appUrl = `http://127.0.0.1:${port}`

    await harness.killApps()
    const down = await cli('tasks', 'refresh')
    expect(down.code).toBe(3)
    expect(down.stderr).toContain('TASK_SOURCE_UNAVAILABLE')
    expect(down.stderr).toContain(`cannot reach ${appUrl}`)
    // The app's outage is a warn line without a stack, never an error-level line.
    expect(server.logs.filter((l) => (l.level as number) >= 50)).toEqual([])
    expect(server.logs).toContainEqual(
      expect.objectContaining({ level: 40, code: 'TASK_SOURCE_UNAVAILABLE', status: 502 }),
    )

    await harness.startApp(port, { release: 2 })
    const refreshed = await cli('tasks', 'refresh', '--json')
    expect(refreshed.code, refreshed.stderr).toBe(0)
    const result = json<{
      sources: { name: string; added: string[]; updated: string[]; missing: string[] }[]
    }>(refreshed)
    expect(result.sources).toHaveLength(1)
    expect(result.sources[0]).toMatchObject({ name: appUrl, added: ['refund'], missing: [] })
    expect(result.sources[0]!.updated).toContain('steps.isolated')

    // The changed schema applies to the next enqueue: release 2 takes steps of at most 1 s.
    const [error] = await safe(client.tasks['steps.isolated'].enqueue({ stepMs: 2_000 }))
    expect(isDefinedError(error) && error.code).toBe('INVALID_INPUT')

    const listed = await cli('tasks')
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toMatch(/^refund\s/m)
    expect(listed.stdout).toMatch(/^steps\.sequential\s/m)

    const human = await cli('tasks', 'refresh')
    expect(human.stdout).toContain(appUrl)
    expect(human.stdout).toMatch(/added: +none/)
  }, 90_000)
})
