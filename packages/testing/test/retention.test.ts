/**
 * Retention on the manual clock: exactly what a purge deletes and what it keeps.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import { NotFoundError, task, type TaskMap } from '@ratchet/core'
import { createTestEngine, type TestEngine, type TestEngineOptions } from '@ratchet/testing'

const HOUR = 3_600_000
const DAY = 24 * HOUR

async function testEngine(tasks: TaskMap, options: Omit<TestEngineOptions, 'tasks'> = {}) {
  const t = await createTestEngine({ tasks, retentionMs: DAY, ...options })
  onTestFinished(() => t.close())
  return t
}

/** Every stored row of an execution is gone: the row, its history, its steps, its inbox. */
async function expectGone(t: TestEngine, id: string) {
  await expect(t.get(id)).rejects.toBeInstanceOf(NotFoundError)
  expect(await t.storage.history(id)).toEqual([])
  const state = await t.storage.loadRunState(id)
  expect(state.steps).toEqual([])
  expect(state.inbox).toEqual([])
}

const leaf = task({ id: 'leaf', input: z.object({ n: z.number() }), run: ({ n }) => n * 2 })
const parent = task({
  id: 'parent',
  input: z.object({ n: z.number() }),
  run: async ({ n }, ctx) => {
    const doubled = await ctx.child('double', leaf, { n })
    const extra = await ctx.step('extra', () => 1)
    return doubled + extra
  },
})
/** Waits for a signal after a finished child: an unfinished parent with a finished child. */
const waiter = task({
  id: 'waiter',
  input: z.object({}),
  run: async (_, ctx) => {
    await ctx.child('first', leaf, { n: 1 })
    return ctx.waitForSignal<string>('go')
  },
})
const quick = task({ id: 'quick', input: z.object({}), retentionMs: HOUR, run: () => 'ok' })
const kept = task({ id: 'kept', input: z.object({}), retentionMs: 'forever', run: () => 'ok' })

describe('retention (purge) on the manual clock', () => {
  it('deletes an old finished tree with all its rows and its idempotency key; keeps a young one', async () => {
    const t = await testEngine({ parent, leaf })
    const old = await t.run(parent, { n: 2 }, { idempotencyKey: 'order-1' })
    expect(old).toMatchObject({ status: 'completed', output: 5 })
    const [oldChild] = (await t.list({ parentId: old.id })).items
    expect(oldChild).toMatchObject({ status: 'completed' })
    expect((await t.steps(old.id)).length).toBe(2)

    await t.advance(12 * HOUR)
    const young = await t.run(parent, { n: 3 })
    await t.advance(12 * HOUR + 1) // old finished a day ago (+ the time it ran), young 12 hours ago

    const report = await t.purge()
    expect(report).toMatchObject({ executions: 2, steps: 2 })
    expect(report.history).toBeGreaterThan(4)
    expect(report.batches).toBeGreaterThanOrEqual(1)
    await expectGone(t, old.id)
    await expectGone(t, oldChild!.id)
    expect(await t.get(young.id)).toMatchObject({ status: 'completed' })
    expect((await t.list({ rootId: young.id })).items).toHaveLength(2)

    // the key is free again: the same key enqueues a NEW execution
    const again = await t.enqueue(parent, { n: 2 }, { idempotencyKey: 'order-1' })
    expect(again.created).toBe(true)
    expect(again.executionId).not.toBe(old.id)

    // a purge with nothing due deletes nothing
    expect(await t.purge()).toMatchObject({ executions: 0, history: 0 })
  })

  it('never deletes a running, waiting or queued execution; an unfinished parent keeps its finished children', async () => {
    const t = await testEngine({ waiter, leaf })
    const { executionId: waiting } = await t.enqueue(waiter, {})
    expect(await t.runUntilSettled(waiting, { until: t.now() })).toMatchObject({ status: 'waiting' })
    const [child] = (await t.list({ parentId: waiting })).items
    expect(child).toMatchObject({ status: 'completed' })
    const { executionId: queued } = await t.enqueue(leaf, { n: 1 }, { delayMs: 1000 * DAY })

    await t.advance(100 * DAY)
    expect(await t.purge()).toMatchObject({ executions: 0 })
    expect(await t.get(waiting)).toMatchObject({ status: 'waiting' })
    expect(await t.get(child!.id)).toMatchObject({ status: 'completed' })
    expect(await t.get(queued)).toMatchObject({ status: 'queued' })

    // once the parent ends, the tree goes after the retention, as a whole
    await t.signal(waiting, 'go', 'now')
    expect(await t.runUntilSettled(waiting)).toMatchObject({ status: 'completed', output: 'now' })
    // a later change: the tree that wrote the newest history row is kept until one (seqs never go back)
    await t.enqueue(leaf, { n: 2 }, { delayMs: 1000 * DAY })
    expect(await t.purge()).toMatchObject({ executions: 0 })
    await t.advance(DAY + 1)
    expect(await t.purge()).toMatchObject({ executions: 2 })
    await expectGone(t, waiting)
    await expectGone(t, child!.id)
    expect(await t.get(queued)).toMatchObject({ status: 'queued' })
  })

  it("a task's retentionMs overrides the default, 'forever' keeps", async () => {
    const t = await testEngine({ quick, kept, leaf })
    const q = await t.run(quick, {})
    const l = await t.run(leaf, { n: 1 })
    const k = await t.run(kept, {}) // last: the newest history row, which purge keeps anyway
    await t.advance(HOUR + 1)
    expect(await t.purge()).toMatchObject({ executions: 1 })
    await expectGone(t, q.id)
    await t.advance(DAY)
    expect(await t.purge()).toMatchObject({ executions: 1 })
    await expectGone(t, l.id)
    await t.advance(3650 * DAY)
    expect(await t.purge()).toMatchObject({ executions: 0 })
    expect(await t.get(k.id)).toMatchObject({ status: 'completed' })
  })

  it('rejects a retention of 0 or out of range, naming the option', async () => {
    expect(() => task({ id: 'bad', input: z.object({}), retentionMs: 0, run: () => 1 })).toThrow(
      /task "bad": retentionMs must be 'forever' or an integer from 1000/,
    )
    await expect(createTestEngine({ tasks: { leaf }, retentionMs: 0 })).rejects.toThrow(/retentionMs must be/)
  })
})
