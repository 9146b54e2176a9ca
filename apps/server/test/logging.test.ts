import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { killChildServers, startChildServer, type ChildServer } from './child-server'
import type { tasks as logTasks } from './fixtures/log-tasks'
import { tasks } from './fixtures/tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'
import { captureLogger } from './log-capture'

const bearer = { authorization: `Bearer ${API_KEY}` }

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

  it('names the database in its listening line, and warns when the tasks module has no task', async () => {
    const { logger, lines } = captureLogger()
    t = await startTestServer({}, { logger })
    expect(lines.find((l) => l.msg === 'ratchet server listening')).toMatchObject({
      tasks: [],
      database: expect.stringMatching(/\.db$/) as unknown,
    })
    expect(lines.find((l) => l.level === 40 && String(l.msg).startsWith('no tasks registered'))).toBeDefined()
  })
})

describe('log levels and shapes, from the server process', () => {
  let dir: string | undefined
  afterEach(async () => {
    await killChildServers()
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  const serve = (logLevel: string) => {
    dir = mkdtempSync(join(tmpdir(), 'ratchet-logs-'))
    return startChildServer({
      databaseFile: join(dir, 'ratchet.db'),
      tasksModule: join(import.meta.dirname, 'fixtures/log-tasks.ts'),
      env: { RATCHET_API_KEYS: `web:${API_KEY}`, LOG_LEVEL: logLevel, RATCHET_MAX_PAYLOAD_BYTES: '1024' },
    })
  }
  const lines = (server: ChildServer, msg: string) => server.logs.filter((l) => l.msg === msg)
  const ERROR = 50

  it("a client's mistakes are quiet lines without a stack; a refused key names the client's address", async () => {
    const server = await serve('debug')
    const post = (path: string, body: string, key = API_KEY) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body,
      })
    const client = createClient<typeof logTasks>({ url: server.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.echo.enqueue({ message: 'x' }, { idempotencyKey: 'once' })
    await client.executions.wait(executionId, { timeoutMs: 10_000 })
    const mistakes: [string, Promise<{ status: number }>][] = [
      ['malformed JSON over RPC', post('/rpc/executions/enqueue', '{"json": {')],
      ['malformed JSON over REST', post('/api/executions', '{"taskId": ')],
      ['input failing the schema', post('/api/executions', JSON.stringify({ taskId: 'echo', input: {} }))],
      ['an unknown task', post('/api/executions', JSON.stringify({ taskId: 'nope', input: {} }))],
      ['an unknown execution', fetch(`${server.url}/api/executions/nope`, { headers: bearer })],
      ['a conflict', post(`/api/executions/${executionId}/cancel`, '{}')],
      [
        'a body over the limit',
        post('/api/executions', JSON.stringify({ taskId: 'echo', input: 'x'.repeat(70_000) })),
      ],
      ['a wrong key', post('/api/executions', '{}', 'wrong-key-0123456789abcdef')],
    ]
    for (const [what, response] of mistakes) expect((await response).status, what).toBeGreaterThanOrEqual(400)
    for (const [, response] of mistakes) expect((await response).status).toBeLessThan(500)
    await expect.poll(() => lines(server, 'request rejected: missing or invalid API key').length).toBe(1)
    await expect.poll(() => lines(server, 'request could not be decoded').length).toBe(2)
    expect(server.logs.filter((l) => (l.level as number) >= ERROR)).toEqual([])
    expect(server.stdout()).not.toMatch(/"stack"/)
    expect(lines(server, 'request could not be decoded')[0]).toMatchObject({ level: 20 })
    expect(lines(server, 'request rejected: missing or invalid API key')[0]).toMatchObject({
      level: 40,
      path: '/api/executions',
      remoteAddress: expect.stringMatching(/^(::ffff:)?127\.0\.0\.1$/) as string,
    })
  })

  it('a planned retry is one warn line with the error’s class and no stack; at debug it has the stack', async () => {
    for (const [level, withStack] of [
      ['info', false],
      ['debug', true],
    ] as const) {
      const server = await serve(level)
      const client = createClient<typeof logTasks>({ url: server.url, apiKey: API_KEY })
      expect(await client.tasks.wobbly.run({}, { timeoutMs: 10_000 })).toBe('done')
      for (const msg of ['step failed; will retry', 'attempt failed; will retry']) {
        await expect.poll(() => lines(server, msg).length, { message: `${msg} at ${level}` }).toBe(1)
        const [line] = lines(server, msg)
        expect(line).toMatchObject({ level: 40, err: { type: 'UpstreamError', retryable: true } })
        expect((line!.err as Record<string, unknown>).stack !== undefined, `${msg} at ${level}`).toBe(
          withStack,
        )
      }
      expect(server.logs.filter((l) => (l.level as number) >= ERROR)).toEqual([])
      await killChildServers()
    }
  })

  it('errors in logs show their class, never "type":"Object"', async () => {
    const server = await serve('info')
    const client = createClient<typeof logTasks>({ url: server.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.refused.enqueue({})
    await client.executions.wait(executionId, { timeoutMs: 10_000 })
    await expect.poll(() => lines(server, 'execution failed').length).toBe(1)
    expect(lines(server, 'execution failed')[0]).toMatchObject({
      level: ERROR,
      executionId,
      err: { type: 'TerminalError', code: 'CARD_DECLINED', message: 'card declined' },
    })
    expect((lines(server, 'execution failed')[0]!.err as { stack?: string }).stack).toMatch(/^TerminalError/)
    expect(server.stdout()).not.toContain('"type":"Object"')
  })

  it('a server fault is logged once, at error, with its stack and the procedure; the client gets a bare 500', async () => {
    const { logger, lines: logged } = captureLogger()
    t = await startTestServer(tasks, { logger })
    t.server.engine.list = () => Promise.reject(new TypeError('the storage fell over'))
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const error = await client.executions.list().catch((e: unknown) => e)
    expect(error).toMatchObject({
      status: 500,
      code: 'INTERNAL_SERVER_ERROR',
      message: 'internal server error',
    })
    const errors = logged.filter((l) => (l.level as number) >= ERROR)
    expect(errors).toEqual([
      expect.objectContaining({
        msg: 'request failed',
        procedure: 'executions.list',
        err: expect.objectContaining({ type: 'TypeError', message: 'the storage fell over' }) as unknown,
      }),
    ])
    expect((errors[0]!.err as { stack: string }).stack).toMatch(/^TypeError: the storage fell over/)
  })
})
