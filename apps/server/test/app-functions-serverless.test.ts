/**
 * App-hosted durable functions as a serverless app runs them: the app is a real `node:http`
 * process that drops every request still open after 1 s, the server a real `npm start` process
 * that learned the app's functions from its manifest. Side effects are counted in files.
 */
import { describe, expect, it } from 'vitest'
import { until } from './helpers'
import { useServerlessHarness } from './serverless-harness'

const harness = useServerlessHarness()
const { effects } = harness

const twentyOnce = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`step-${i}`, 1]))
const total = (19 * 20) / 2

describe('app-hosted functions behind a 1 s request limit', () => {
  it('20 steps of 300 ms complete in isolated mode and in sequential mode with a budget under the limit', async () => {
    const { client } = await harness.start()
    const isolated = await client.tasks['steps.isolated'].enqueue({ stepMs: 300 })
    const sequential = await client.tasks['steps.sequential'].enqueue({ stepMs: 300 })
    for (const { executionId } of [isolated, sequential]) {
      const done = await client.executions.wait(executionId, { timeoutMs: 60_000 })
      expect(done).toMatchObject({ status: 'completed', output: { total }, attempt: 1 })
      expect(effects(executionId)).toEqual(twentyOnce)
    }
  }, 90_000)

  it('the app SIGKILLed mid-invocation and restarted: the workflow completes, completed steps ran once', async () => {
    const { port, client } = await harness.start()
    const { executionId } = await client.tasks['steps.isolated'].enqueue({ stepMs: 300 })
    await until(
      () => client.executions.steps(executionId),
      (page) => page.items.length >= 5,
      30_000,
    )
    // Halfway into a step: its invocation is in flight.
    await new Promise((resolve) => setTimeout(resolve, 150))
    const recorded = new Set((await client.executions.steps(executionId)).items.map((s) => s.name))
    await harness.killApps()
    await new Promise((resolve) => setTimeout(resolve, 500))
    await harness.startApp(port)
    const done = await client.executions.wait(executionId, { timeoutMs: 60_000 })
    expect(done, JSON.stringify(done.error)).toMatchObject({ status: 'completed', output: { total } })
    // The kill was felt: an invocation failed, and the attempt after it replayed the record.
    expect(done.attempt).toBeGreaterThan(1)
    const counts = effects(executionId)
    expect(Object.keys(counts).sort()).toEqual(Object.keys(twentyOnce).sort())
    // A step recorded before the kill never ran again; the one cut off may have run twice.
    for (const name of recorded) expect(counts[name], name).toBe(1)
    expect(Object.values(counts).filter((n) => n > 1).length).toBeLessThanOrEqual(1)
  }, 90_000)

  it('a cancel aborts the in-flight invocation through its AbortSignal', async () => {
    const { client } = await harness.start({ dropAfterMs: 0 })
    const { executionId } = await client.tasks.hang.enqueue({})
    await until(
      () => effects(executionId),
      (counts) => counts.started === 1,
      20_000,
    )
    await client.executions.cancel(executionId)
    await until(
      () => effects(executionId),
      (counts) => counts.aborted === 1,
      10_000,
    )
    expect((await client.executions.get(executionId)).status).toBe('cancelled')
  }, 60_000)

  it('a deploy that changes the steps: ctx.patched keeps old executions on the old path; an unguarded change fails', async () => {
    const { port, client } = await harness.start()
    const waiting = (id: string) =>
      until(
        () => client.executions.get(id),
        (e) => e.status === 'waiting',
        20_000,
      )
    const old = await client.tasks.checkout.enqueue({ order: 'old' })
    const unguarded = await client.tasks.checkout.enqueue({ order: 'unguarded' })
    await Promise.all([waiting(old.executionId), waiting(unguarded.executionId)])
    const redeploy = async (deploy: string) => {
      await harness.killApps()
      await harness.startApp(port, { deploy })
    }
    await redeploy('v2-patched')
    const fresh = await client.tasks.checkout.enqueue({ order: 'fresh' })
    await waiting(fresh.executionId)
    for (const { executionId } of [old, fresh]) await client.executions.signal(executionId, 'go', null)
    const wait = (id: string) => client.executions.wait(id, { timeoutMs: 30_000 })
    expect(await wait(old.executionId)).toMatchObject({ status: 'completed', output: 'old' })
    expect(await wait(fresh.executionId)).toMatchObject({ status: 'completed', output: 'new' })
    const names = async (id: string) => (await client.executions.steps(id)).items.map((s) => s.name)
    expect(await names(old.executionId)).toEqual(['reserve', 'go', 'charge'])
    expect(await names(fresh.executionId)).toEqual([
      'patched:audit-first',
      'audit',
      'reserve',
      'go',
      'charge',
    ])
    await redeploy('v3-unguarded')
    await client.executions.signal(unguarded.executionId, 'go', null)
    expect(await wait(unguarded.executionId)).toMatchObject({
      status: 'failed',
      error: { code: 'NON_DETERMINISTIC_REPLAY' },
    })
  }, 90_000)
})
