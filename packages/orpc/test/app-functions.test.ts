/**
 * App-hosted durable functions over real HTTP: the web app serves its functions route from a
 * fetch handler on an ephemeral port, a Ratchet server on another learns them from the app's
 * signed manifest and drives them step by step.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { task } from '@ratchet/core'
import { createClient, type RatchetClient } from '@ratchet/client'
import { appFunctions } from '@ratchet/orpc'
import { createFunctionsHandler, defineFunction, TerminalError } from '@ratchet/orpc/functions'
import { serveFetch } from '@ratchet/orpc/node'
import { createServer, type RatchetServer } from '@ratchet/server'

const SECRET = 'functions-secret-0123456789abcdef0123'
const API_KEY = 'test-key-0123456789abcdef'
const fast = { initialMs: 10, factor: 1, maxMs: 10 }

/** Side effects of steps, counted outside the functions: `${executionId}:${step}` → runs. */
const effects = new Map<string, number>()
const effect = (executionId: string, step: string) =>
  effects.set(`${executionId}:${step}`, (effects.get(`${executionId}:${step}`) ?? 0) + 1)
const effectsOf = (executionId: string) =>
  Object.fromEntries(
    [...effects]
      .filter(([key]) => key.startsWith(`${executionId}:`))
      .map(([k, v]) => [k.slice(k.indexOf(':') + 1), v]),
  )
/** Invocations the app answered, per execution. */
const invocations = new Map<string, number>()
const flaky = new Map<string, number>()

const double = task({
  id: 'double',
  input: z.object({ n: z.number() }),
  run: ({ n }) => ({ doubled: n * 2 }),
})

const addOne = defineFunction({
  id: 'addOne',
  input: z.object({ n: z.number() }),
  mode: 'isolated',
  run: async ({ n }, ctx) => ctx.step('add', () => n + 1),
})

const countSteps = (mode: 'isolated' | 'sequential') =>
  defineFunction({
    id: `count.${mode}`,
    input: z.object({ steps: z.number().int().min(1).max(50) }),
    output: z.object({ total: z.number() }),
    mode,
    run: async ({ steps }, ctx) => {
      let total = 0
      for (let i = 0; i < steps; i++) {
        total += await ctx.step(`step-${i}`, () => {
          effect(ctx.executionId, `step-${i}`)
          return i
        })
      }
      return { total }
    },
  })

const workflow = defineFunction({
  id: 'workflow',
  input: z.object({ user: z.string() }),
  mode: 'sequential',
  run: async ({ user }, ctx) => {
    const greeting = await ctx.step('greet', () => `hello ${user}`)
    await ctx.sleep('nap', 50)
    const approval = await ctx.waitForSignal('approval', { schema: z.object({ ok: z.boolean() }) })
    const [server, app] = await ctx.all([
      ctx.child('server-child', double, { n: 21 }),
      ctx.child('app-child', addOne, { n: 41 }),
    ])
    return { greeting, approval, server, app }
  },
})

const failing = defineFunction({
  id: 'failing',
  input: z.object({ catchIt: z.boolean() }),
  retry: { maxAttempts: 1 },
  run: async ({ catchIt }, ctx) => {
    try {
      await ctx.step('refuse', () => {
        throw new TerminalError('no such customer', { code: 'NO_CUSTOMER' })
      })
    } catch (error) {
      if (!catchIt) throw error
      return await ctx.step('after', () => `caught ${(error as Error).message}`)
    }
    return 'unreachable'
  },
})

const retrying = defineFunction({
  id: 'retrying',
  input: z.object({}),
  mode: 'sequential',
  retry: { maxAttempts: 3, backoff: fast },
  run: async (_input, ctx) => {
    await ctx.step('first', () => effect(ctx.executionId, 'first'))
    await ctx.step('flaky', () => {
      effect(ctx.executionId, 'flaky')
      const n = (flaky.get(ctx.executionId) ?? 0) + 1
      flaky.set(ctx.executionId, n)
      if (n < 3) throw new Error(`flaky failure ${n}`)
      return n
    })
    return 'done'
  },
})

/** Flipped by a test between two invocations, as a deploy that changed the code would. */
let deployed = 'v1'
const changing = defineFunction({
  id: 'changing',
  input: z.object({}),
  run: async (_input, ctx) => {
    await ctx.step(deployed === 'v1' ? 'charge' : 'reserve', () => 1)
    await ctx.waitForSignal('go')
    return deployed
  },
})

const duplicate = defineFunction({
  id: 'duplicate',
  input: z.object({}),
  run: async (_input, ctx) => {
    await ctx.step('same', () => 1)
    await ctx.step('same', () => 2)
  },
})

/** Its first invocation is answered 503 by the platform, before the app runs it. */
const unavailable = defineFunction({
  id: 'unavailable',
  input: z.object({}),
  retry: { maxAttempts: 3, backoff: fast },
  run: async (_input, ctx) => {
    await ctx.step('first', () => effect(ctx.executionId, 'first'))
    return 'served'
  },
})

/** Its first attempt's step outlasts the invocation's 300 ms limit. */
const slow = defineFunction({
  id: 'slow',
  input: z.object({}),
  timeoutMs: 300,
  retry: { maxAttempts: 3, backoff: fast },
  run: async (_input, ctx) => {
    await ctx.step('before', () => effect(ctx.executionId, 'before'))
    await ctx.step('slow', async () => {
      effect(ctx.executionId, 'slow')
      if (ctx.attempt === 1) await new Promise((resolve) => setTimeout(resolve, 1_000))
    })
    return 'in time'
  },
})

const functions = {
  addOne,
  unavailable,
  slow,
  changing,
  duplicate,
  'count.isolated': countSteps('isolated'),
  'count.sequential': countSteps('sequential'),
  workflow,
  failing,
  retrying,
}
const serverTasks = { double }
type Everything = typeof serverTasks & typeof functions

let app: Awaited<ReturnType<typeof serveFetch>>
let ratchet: RatchetServer
let client: RatchetClient<Everything>
let dir: string

beforeAll(async () => {
  const handler = createFunctionsHandler(functions, { secret: SECRET })
  app = await serveFetch(async (request) => {
    const id = request.headers.get('x-ratchet-execution-id')
    if (id) invocations.set(id, (invocations.get(id) ?? 0) + 1)
    if (
      id &&
      request.headers.get('x-ratchet-procedure') === 'function:unavailable' &&
      invocations.get(id) === 1
    )
      return new Response('deploying', { status: 503 })
    return handler(request)
  })
  dir = mkdtempSync(join(tmpdir(), 'ratchet-functions-'))
  ratchet = await createServer({
    tasks: { ...serverTasks, ...(await appFunctions({ url: app.url, secret: SECRET })) },
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    apiKeys: [{ name: 'test', secret: API_KEY }],
    drainMs: 500,
  })
  const { url } = await ratchet.start()
  client = createClient<Everything>({ url, apiKey: API_KEY })
})

afterAll(async () => {
  await ratchet.stop()
  await app.close()
  rmSync(dir, { recursive: true, force: true })
})

const wait = (id: string) => client.executions.wait(id, { timeoutMs: 20_000 })

describe('app-hosted durable functions', () => {
  it('isolated: one new step per invocation, each step run once', async () => {
    const { executionId } = await client.tasks['count.isolated'].enqueue({ steps: 5 })
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: { total: 10 } })
    expect(effectsOf(executionId)).toEqual(Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`step-${i}`, 1])))
    // Five steps, one per invocation; the last also returns.
    expect(invocations.get(executionId)).toBe(5)
  })

  it('sequential: every step within the budget in one invocation', async () => {
    const { executionId } = await client.tasks['count.sequential'].enqueue({ steps: 5 })
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: { total: 10 } })
    expect(invocations.get(executionId)).toBe(1)
    const { items: steps } = await client.executions.steps(executionId)
    expect(steps.map((s) => [s.name, s.status])).toEqual([0, 1, 2, 3, 4].map((i) => [`step-${i}`, 'done']))
  })

  it('waits end the invocation: a sleep, a signal, children on the server and in the app', async () => {
    const { executionId } = await client.tasks.workflow.enqueue({ user: 'ada' })
    await expect
      .poll(async () => (await client.executions.get(executionId)).status, { timeout: 10_000 })
      .toBe('waiting')
    await client.executions.signal(executionId, 'approval', { ok: true })
    expect(await wait(executionId)).toMatchObject({
      status: 'completed',
      output: { greeting: 'hello ada', approval: { ok: true }, server: { doubled: 42 }, app: 42 },
    })
  })

  it('a TerminalError in a step is recorded and thrown into the function, which may catch it', async () => {
    const caught = await client.tasks.failing.enqueue({ catchIt: true })
    expect(await wait(caught.executionId)).toMatchObject({
      status: 'completed',
      output: 'caught no such customer',
    })
    const thrown = await client.tasks.failing.enqueue({ catchIt: false })
    expect(await wait(thrown.executionId)).toMatchObject({
      status: 'failed',
      error: { code: 'NO_CUSTOMER', message: 'no such customer' },
    })
  })

  it('a retryable error fails the attempt; completed steps do not run again', async () => {
    const { executionId } = await client.tasks.retrying.enqueue({})
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: 'done', attempt: 3 })
    expect(effectsOf(executionId)).toEqual({ first: 1, flaky: 3 })
  })

  it('an app answering 503 or taking longer than timeoutMs: the attempt is retried, steps recorded before stay', async () => {
    const unavailableRun = await client.tasks.unavailable.enqueue({})
    expect(await wait(unavailableRun.executionId)).toMatchObject({
      status: 'completed',
      output: 'served',
      attempt: 2,
    })
    expect(effectsOf(unavailableRun.executionId)).toEqual({ first: 1 })
    const slowRun = await client.tasks.slow.enqueue({})
    expect(await wait(slowRun.executionId)).toMatchObject({
      status: 'completed',
      output: 'in time',
      attempt: 2,
    })
    expect(effectsOf(slowRun.executionId)).toEqual({ before: 1, slow: 2 })
    const { items } = await client.executions.history(slowRun.executionId)
    expect(JSON.stringify(items)).toContain('INVOCATION_TIMEOUT')
  })

  it('input is checked at enqueue against the function schema: a 400 naming the field, no execution', async () => {
    const error = await client.tasks['count.isolated'].enqueue({ steps: 'many' as unknown as number }).then(
      () => undefined,
      (e: unknown) => e as { code: string; status: number; message: string; data: unknown },
    )
    expect(error).toMatchObject({ code: 'INVALID_INPUT', status: 400 })
    expect(JSON.stringify(error?.data)).toContain('steps')
    expect(error?.message).toMatch(/count\.isolated.*steps/)
  })

  it('replay guards: a reordered record and a duplicate name fail the execution, as on the server', async () => {
    deployed = 'v1'
    const { executionId } = await client.tasks.changing.enqueue({})
    await expect
      .poll(async () => (await client.executions.get(executionId)).status, { timeout: 10_000 })
      .toBe('waiting')
    // One invocation: its step, then the wait that parks it (no second call to learn nothing).
    expect(invocations.get(executionId)).toBe(1)
    deployed = 'v2'
    await client.executions.signal(executionId, 'go', {})
    expect(await wait(executionId)).toMatchObject({
      status: 'failed',
      error: {
        code: 'NON_DETERMINISTIC_REPLAY',
        message: expect.stringMatching(/"charge".*"reserve"/) as unknown,
      },
    })
    const twice = await client.tasks.duplicate.enqueue({})
    expect(await wait(twice.executionId)).toMatchObject({
      status: 'failed',
      error: { code: 'DUPLICATE_STEP' },
    })
  })

  it('refuses unsigned, forged and replayed calls', async () => {
    const unsigned = await fetch(app.url, { method: 'POST', body: '{}' })
    expect(unsigned.status).toBe(401)
    const { signedHeaders } = await import('../src/signing')
    const meta = { executionId: '-', attempt: 0, idempotencyKey: '-', procedure: '$manifest' }
    const forged = await fetch(app.url, {
      method: 'POST',
      headers: await signedHeaders('another-secret-0123456789abcdef01234', meta, '', Date.now()),
    })
    expect(forged.status).toBe(401)
    const headers = await signedHeaders(SECRET, meta, '', Date.now())
    expect((await fetch(app.url, { method: 'POST', headers })).status).toBe(200)
    expect((await fetch(app.url, { method: 'POST', headers })).status).toBe(409)
    const old = await signedHeaders(SECRET, meta, '', Date.now() - 120_000)
    expect((await fetch(app.url, { method: 'POST', headers: old })).status).toBe(401)
  })
})
