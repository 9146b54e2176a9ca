/**
 * Several named API keys (RATCHET_API_KEYS="name:secret,..."): each works, anything else is a
 * 401, health checks need none, and logs name the key a request used but never print a secret.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { parseApiKeys } from '../src/auth'
import { killChildServers, startChildServer } from './child-server'
import { tasks } from './fixtures/watch-tasks'
import { startTestServer, type TestServer } from './helpers'
import { captureLogger } from './log-capture'

const WEB = 'web-secret-0123456789abcdef'
const CLI = 'cli-secret-fedcba9876543210'
const UNKNOWN = 'not-a-key-of-this-server-42'
const KEYS = `web:${WEB},cli:${CLI}`

let t: TestServer | undefined
let dir: string | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
  await killChildServers()
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` })

describe('named API keys', () => {
  it('both keys work; an unknown key and no key get 401; /healthz needs none', async () => {
    const { logger, lines, raw } = captureLogger()
    t = await startTestServer(tasks, { apiKeys: parseApiKeys(KEYS), logger })
    const web = createClient<typeof tasks>({ url: t.url, apiKey: WEB })
    const cli = createClient<typeof tasks>({ url: t.url, apiKey: CLI })

    const { executionId } = await web.tasks.gate.enqueue({})
    expect((await cli.executions.get(executionId)).status).toMatch(/queued|running|waiting/)
    const rest = await fetch(`${t.url}/api/executions/${executionId}`, { headers: bearer(CLI) })
    expect(rest.status).toBe(200)

    for (const headers of [bearer(UNKNOWN), {}, { authorization: WEB } /* not Bearer */]) {
      expect((await fetch(`${t.url}/api/executions`, { headers })).status).toBe(401)
    }
    const [unknown, none] = await Promise.all([
      createClient({ url: t.url, apiKey: UNKNOWN })
        .executions.list()
        .catch((e: unknown) => e),
      createClient({ url: t.url })
        .executions.list()
        .catch((e: unknown) => e),
    ])
    expect(unknown).toMatchObject({ code: 'UNAUTHORIZED', status: 401 })
    expect(none).toMatchObject({ code: 'UNAUTHORIZED', status: 401 })

    const health = await fetch(`${t.url}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })

    // Each request's log lines carry the name of the key it used.
    const handled = lines.filter((l) => l.msg === 'request handled')
    expect(handled.map((l) => [l.procedure, l.apiKeyName])).toEqual([
      ['executions.enqueue', 'web'],
      ['executions.get', 'cli'],
      ['executions.get', 'cli'],
    ])
    expect(lines.find((l) => l.msg === 'enqueued')).toMatchObject({
      executionId,
      taskId: 'gate',
      apiKeyName: 'web',
    })
    const rejected = lines.filter((l) => l.msg === 'request rejected: missing or invalid API key')
    expect(rejected).toHaveLength(5)
    for (const line of rejected) expect(line).not.toHaveProperty('apiKeyName')
    expect(lines.find((l) => l.msg === 'ratchet server listening')).toMatchObject({ apiKeys: ['web', 'cli'] })
    for (const secret of [WEB, CLI, UNKNOWN]) expect(raw()).not.toContain(secret)
  })

  it('the server process, configured from RATCHET_API_KEYS, logs key names and no secrets', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratchet-api-keys-'))
    const server = await startChildServer({
      databaseFile: join(dir, 'ratchet.db'),
      tasksModule: join(import.meta.dirname, 'fixtures/watch-tasks.ts'),
      env: { RATCHET_API_KEYS: KEYS, LOG_LEVEL: 'debug' },
    })
    const { executionId } = await createClient<typeof tasks>({
      url: server.url,
      apiKey: CLI,
    }).tasks.gate.enqueue({})
    await createClient({ url: server.url, apiKey: UNKNOWN })
      .executions.list()
      .catch(() => undefined)
    await createClient({ url: server.url, apiKey: WEB }).executions.get(executionId)
    const handled = () => server.logs.filter((l) => l.msg === 'request handled')
    // stdout is read asynchronously: wait for the last line.
    await expect.poll(() => handled().length).toBe(2)
    expect(handled().map((l) => [l.procedure, l.apiKeyName])).toEqual([
      ['executions.enqueue', 'cli'],
      ['executions.get', 'web'],
    ])
    expect(server.logs.find((l) => l.msg === 'enqueued')).toMatchObject({ executionId, apiKeyName: 'cli' })
    expect(server.logs.some((l) => l.msg === 'request rejected: missing or invalid API key')).toBe(true)
    for (const secret of [WEB, CLI, UNKNOWN]) expect(server.stdout()).not.toContain(secret)
  })

  it('a server started with an entry whose name is not a name refuses to start, saying which and why', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratchet-api-keys-'))
    const secret = 'Zk2/9f+Q-really-secret-part'
    const refused = await startChildServer({
      databaseFile: join(dir, 'ratchet.db'),
      tasksModule: join(import.meta.dirname, 'fixtures/watch-tasks.ts'),
      // entry 2: "my app" is not a name; taken as a bare secret it would have been "my app:…"
      env: { RATCHET_API_KEYS: `${KEYS.split(',')[0]},my app:${secret}` },
    }).then(
      () => {
        throw new Error('the server started')
      },
      (error: unknown) => error as Error,
    )
    expect(refused.message).toMatch(/exited with 1 before listening/)
    expect(refused.message).toContain(
      "RATCHET_API_KEYS entry 2: the part before the first ':' is not a valid key name",
    )
    for (const part of [secret, 'my app', WEB]) expect(refused.message).not.toContain(part)
  })
})
