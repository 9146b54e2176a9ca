/** ctx.continueAsNew through a real server: bounded record and history, validation, children. */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createClient } from '@ratchet/client'
import { loop, task } from '@ratchet/core'
import type { SqliteStorage } from '@ratchet/storage'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

const counter = loop(
  'counter',
  ({ target }, { iteration }) => (iteration >= target ? { done: true, value: iteration } : { done: false }),
  { input: z.object({ target: z.number().int() }), maxAttempts: 20_000, sleepMs: 0, continueAsNewEvery: 100 },
)
const countdown = task({
  id: 'countdown',
  input: z.object({ left: z.number().int().min(0) }),
  run: async ({ left }, ctx) => {
    const seen = await ctx.step('seen', () => left)
    if (seen === 0) return { generation: ctx.generation }
    return ctx.continueAsNew({ left: left - 1 })
  },
})
const badContinue = task({
  id: 'bad-continue',
  input: z.object({ n: z.number() }),
  run: (_, ctx) => ctx.continueAsNew({ n: 'not a number' }),
})
const forever = task({
  id: 'forever',
  input: z.object({}),
  run: (_, ctx) => ctx.waitForSignal('never'),
})
const abandoner = task({
  id: 'abandoner',
  input: z.object({ round: z.number().int() }),
  run: async ({ round }, ctx) => {
    if (round === 1) return 'done'
    // an awaited child still running when the run continues as new: it is cancelled
    const child = ctx.child('wait', forever, {})
    child.catch(() => {})
    await ctx.step('started', () => true)
    return ctx.continueAsNew({ round: 1 })
  },
})
const tasks = { counter, countdown, badContinue, forever, abandoner }

let t: TestServer | undefined
afterEach(() => t?.close())

describe('ctx.continueAsNew', () => {
  it('a loop of 10,000 iterations continuing as new every 100 keeps its record and history bounded', async () => {
    t = await startTestServer(tasks, { concurrency: 4 })
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const db = (t.server.engine.storage as SqliteStorage).db.$client
    const count = (table: string, id: string) =>
      db.prepare(`SELECT count(*) FROM ${table} WHERE execution_id = ?`).pluck().get(id) as number
    const { executionId } = await client.tasks.counter.enqueue({ target: 10_000 })
    let maxSteps = 0
    let maxHistory = 0
    const done = await until(
      () => {
        maxSteps = Math.max(maxSteps, count('execution_steps', executionId))
        maxHistory = Math.max(maxHistory, count('execution_history', executionId))
        return client.executions.get(executionId)
      },
      (e) => e.status === 'completed',
      120_000,
    )
    expect(done).toMatchObject({ status: 'completed', output: 10_000, attempt: 1 })
    // one generation's record at most: 100 iterations and 100 sleeps; its history has a row
    // per step and wait besides the transitions (10,000 iterations without it: 20,000+ each)
    expect(maxSteps).toBeLessThanOrEqual(200)
    expect(maxHistory).toBeLessThanOrEqual(230)
    expect(count('execution_steps', executionId)).toBeLessThanOrEqual(200)
    const { items: history } = await client.executions.history(executionId, { limit: 1000 })
    expect(history.length).toBeLessThanOrEqual(230)
    expect(history[0]).toMatchObject({
      from: 'running',
      to: 'queued',
      detail: { transition: 'continue', generation: 99 },
    })
    expect(history.at(-1)).toMatchObject({ to: 'completed' })
  }, 180_000)

  it('replaces the input, resets the record (a step of the same name runs again) and wait follows it', async () => {
    t = await startTestServer(tasks)
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.countdown.enqueue({ left: 3 })
    const done = await client.executions.wait(executionId, { timeoutMs: 10_000 })
    expect(done).toMatchObject({ status: 'completed', output: { generation: 3 }, input: { left: 0 } })
  })

  it('an input the task schema rejects fails the execution with INVALID_CONTINUE_INPUT, not retried', async () => {
    t = await startTestServer(tasks)
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.badContinue.enqueue({ n: 1 })
    const done = await client.executions.wait(executionId, { timeoutMs: 10_000 })
    expect(done).toMatchObject({
      status: 'failed',
      attempt: 1,
      error: { name: 'ValidationError', code: 'INVALID_CONTINUE_INPUT' },
    })
    expect(done.error?.message).toMatch(
      /continueAsNew: the input does not match the input schema of task "bad-continue"/,
    )
  })

  it('cancels the awaited children still running; the next generation runs', async () => {
    t = await startTestServer(tasks)
    const client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.abandoner.enqueue({ round: 0 })
    expect(await client.executions.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: 'done',
    })
    const [child] = (await client.executions.list({ parentId: executionId })).items
    expect(child).toMatchObject({ taskId: 'forever', status: 'cancelled', error: { code: 'PARENT_ENDED' } })
  })
})
