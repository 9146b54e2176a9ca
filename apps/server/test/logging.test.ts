import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { tasks } from './fixtures/tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'
import { captureLogger } from './log-capture'

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

describe('logs', () => {
  it('bind executionId, taskId, attempt and run to every run, and never contain an API key', async () => {
    const { logger, lines, raw } = captureLogger()
    t = await startTestServer(tasks, { logger })
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.flaky.enqueue({ failures: 1 })
    await client.executions.wait(executionId, { timeoutMs: 5_000 })
    const attemptLines = lines.filter((l) => l.executionId === executionId)
    expect(attemptLines.map((l) => [l.msg, l.attempt, l.run])).toEqual(
      expect.arrayContaining([
        ['attempt started', 1, 1],
        ['attempt failed; will retry', 1, 1],
        ['attempt started', 2, 2],
        ['execution completed', 2, 2],
      ]),
    )
    for (const line of attemptLines) expect(line.taskId).toBe('flaky')
    expect(lines.find((l) => l.msg === 'ratchet server listening')).toMatchObject({ apiKeys: ['test'] })
    // a wrong key in a request is not logged either
    await createClient({ url: t.url, apiKey: 'wrong-key-but-long-enough' })
      .executions.list()
      .catch(() => undefined)
    expect(raw()).not.toContain(API_KEY)
    expect(raw()).not.toContain('wrong-key-but-long-enough')
  })

  it('without API keys, listens on loopback only and says so', async () => {
    const { logger, lines } = captureLogger()
    t = await startTestServer(tasks, { logger, apiKeys: [], host: '0.0.0.0' })
    expect(new URL(t.url).hostname).toBe('127.0.0.1')
    expect(lines.find((l) => l.level === 40)).toMatchObject({
      requestedHost: '0.0.0.0',
      msg: 'no API keys configured (RATCHET_API_KEYS): listening on 127.0.0.1 only',
    })
    // and needs no key
    expect((await createClient({ url: t.url }).executions.list()).items).toEqual([])
  })
})
