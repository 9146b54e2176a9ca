/**
 * A watch and a wait held by a client across a SIGKILL of the server process: the server comes
 * back on the same SQLite file and the same URL, the clients reconnect by themselves and resume
 * after the last event they saw, so the completion arrives with nothing skipped or repeated.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, type WatchEvent } from '@ratchet/client'
import { freePort, killChildServers, startChildServer } from './child-server'
import type { tasks } from './fixtures/watch-tasks'
import { API_KEY, until } from './helpers'

const TASKS = join(import.meta.dirname, 'fixtures/watch-tasks.ts')

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-watch-crash-'))
})
afterEach(async () => {
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

describe('watch across a SIGKILL of the server', () => {
  it('watch and wait reconnect to the restarted server and deliver the completion, no event skipped or repeated', async () => {
    const port = await freePort()
    const start = () =>
      startChildServer({
        databaseFile: join(dir, 'ratchet.db'),
        tasksModule: TASKS,
        port,
        env: { RATCHET_API_KEYS: `crash:${API_KEY}`, LOG_LEVEL: 'debug' },
      })
    const first = await start()
    const client = createClient<typeof tasks>({ url: first.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.gate.enqueue({})

    const seen: WatchEvent[] = []
    const watching = (async () => {
      for await (const event of client.tasks.gate.watch(executionId)) seen.push(event)
    })()
    const waiting = client.tasks.gate.wait(executionId, { timeoutMs: 25_000 })
    await until(
      () => seen.map((e) => e.status),
      (statuses) => statuses.join() === 'queued,running,waiting',
    )

    first.process.kill('SIGKILL') // both streams drop mid-flight, with no goodbye event
    expect(await first.exited).toBe(null)

    const second = await start()
    expect(second.url).toBe(first.url)
    // The execution goes on at once, whether or not the clients are back yet.
    await client.executions.signal(executionId, 'go', 'after the crash')

    const done = await waiting
    await watching
    expect(done).toMatchObject({ status: 'completed', output: 'after the crash' })
    expect(seen.map((e) => `${e.from ?? '-'}>${e.status}`)).toEqual([
      '->queued',
      'queued>running',
      'running>waiting',
      'waiting>queued',
      'queued>running',
      'running>completed',
    ])
    const history = (await client.executions.history(executionId)).items.filter((h) => h.event === 'status')
    expect(seen.map((e) => e.seq)).toEqual(history.map((h) => h.seq))
    expect(seen.at(-1)!.execution).toMatchObject({ status: 'completed', output: 'after the crash' })
    // Both reconnected to the new process: two watch requests reached it (the wait is a watch).
    await expect
      .poll(() =>
        second.logs.filter((l) => l.msg === 'request handled' && l.procedure === 'executions.watch'),
      )
      .toHaveLength(2)

    second.process.kill('SIGTERM')
    expect(await second.exited).toBe(0)
  })
})
