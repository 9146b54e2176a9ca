/**
 * The example end to end: the serverless-style app (its route files behind a real HTTP server)
 * and a Ratchet server that learned the app's durable functions from its manifest, each on an
 * ephemeral port. A sign-up starts the onboarding; the verification link signals it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveFetch } from '@ratchet/orpc/node'
import { createServer, type RatchetServer } from '@ratchet/server'
import { app } from '../src/app'
import { ratchet } from '../src/ratchet'
import { store } from '../src/store'

const API_KEY = 'example-key-0123456789abcdef'
let web: Awaited<ReturnType<typeof serveFetch>>
let server: RatchetServer
let dir: string

beforeAll(async () => {
  web = await serveFetch(app)
  dir = mkdtempSync(join(tmpdir(), 'ratchet-example-serverless-'))
  process.env.APP_FUNCTIONS_URL = `${web.url}/api/ratchet`
  // The tasks module fetches the manifest when it loads: import it after the app is up.
  const { tasks } = await import('../ratchet/tasks')
  server = await createServer({
    tasks,
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    apiKeys: [{ name: 'app', secret: API_KEY }],
    drainMs: 500,
  })
  const { url } = await server.start()
  process.env.RATCHET_URL = url
  process.env.RATCHET_API_KEY = API_KEY
  process.env.TRIAL_MS = '200'
})

afterAll(async () => {
  await server.stop()
  await web.close()
  rmSync(dir, { recursive: true, force: true })
})

const post = (path: string, body: unknown) =>
  fetch(`${web.url}${path}`, { method: 'POST', body: JSON.stringify(body) })

describe('example: onboarding as an app-hosted durable function', () => {
  it('sign-up, verification, welcome child, trial sleep: completes, each email once', async () => {
    const email = 'ada@example.com'
    const signup = await post('/api/signup', { email })
    expect(signup.status).toBe(202)
    const { executionId } = (await signup.json()) as { executionId: string }
    // A double-submitted form: the same onboarding.
    expect(await (await post('/api/signup', { email })).json()).toEqual({ executionId })
    const client = ratchet()
    await expect
      .poll(async () => (await client.executions.get(executionId)).status, { timeout: 10_000 })
      .toBe('waiting')
    expect(store.accounts.get(email)).toMatchObject({ verified: false })
    expect((await post('/api/verify', { executionId })).status).toBe(200)
    const done = await client.executions.wait(executionId, { timeoutMs: 20_000 })
    expect(done).toMatchObject({
      status: 'completed',
      output: { accountId: `acct_${executionId}`, verified: true },
    })
    expect(store.accounts.get(email)).toMatchObject({ verified: true })
    const kinds = [...store.emails.values()].filter((e) => e.to === email).map((e) => e.kind)
    expect(kinds.sort()).toEqual(['trial-ended', 'verify', 'welcome'])
    const { items } = await client.executions.steps(executionId)
    expect(items.map((s) => s.name)).toEqual([
      'create-account',
      'send-verification',
      'email-verified',
      'mark-verified',
      'welcome',
      'trial',
      'trial-ended',
    ])
  })

  it('an email already taken fails the onboarding at once (a TerminalError, not retried)', async () => {
    const client = ratchet()
    const { executionId } = await client.tasks.onboarding.enqueue({ email: 'ada@example.com', trialMs: 0 })
    expect(await client.executions.wait(executionId, { timeoutMs: 20_000 })).toMatchObject({
      status: 'failed',
      attempt: 1,
      error: { code: 'ACCOUNT_EXISTS' },
    })
  })

  it('a bad email is refused at enqueue by the server, from the JSON Schema the app published', async () => {
    const signup = await post('/api/signup', { email: 'not-an-email' })
    expect(signup.status).toBe(400)
    expect(JSON.stringify(await signup.json())).toContain('email')
    await expect(ratchet().tasks.onboarding.enqueue({ email: 'not-an-email' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      status: 400,
    })
  })
})
