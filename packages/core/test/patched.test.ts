/**
 * `ctx.patched`: a deploy that changes a durable function's steps keeps in-flight executions
 * on the old path and sends new ones down the new path; an unguarded change still fails.
 * The "deploy" is a module variable the task's body reads, flipped between two runs.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { task } from '@ratchet/core'
import { openEngine } from './open-engine'

type Version = 'v1' | 'v2-patched' | 'v3-unguarded'
let deployed: Version = 'v1'
const ran: string[] = []

const checkout = task({
  id: 'checkout',
  input: z.object({ order: z.string() }),
  retry: { maxAttempts: 1 },
  run: async ({ order }, ctx) => {
    let path = 'old'
    if (deployed === 'v2-patched' && (await ctx.patched('audit-first'))) {
      await ctx.step('audit', () => ran.push(`${order}:audit`))
      path = 'new'
    }
    if (deployed === 'v3-unguarded') await ctx.step('audit', () => ran.push(`${order}:audit`))
    await ctx.step('reserve', () => ran.push(`${order}:reserve`))
    await ctx.waitForSignal('go')
    await ctx.step('charge', () => ran.push(`${order}:charge`))
    return path
  },
})

function run() {
  const { engine } = openEngine({ checkout })
  const drain = async () => {
    while ((await engine.executor.tick()).claimed > 0);
  }
  const start = async (order: string) => {
    const { execution } = await engine.enqueue(checkout, { order })
    await drain()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    return execution.id
  }
  const resume = async (id: string) => {
    await engine.signal(id, 'go', null)
    await drain()
    return engine.get(id)
  }
  const names = async (id: string) => (await engine.steps(id)).items.map((s) => s.name)
  return { start, resume, names }
}

describe('ctx.patched', () => {
  it('old executions replay the old path, new ones take the new path, each recorded once', async () => {
    const { start, resume, names } = run()
    deployed = 'v1'
    const old = await start('old')
    deployed = 'v2-patched'
    const fresh = await start('fresh')
    expect(await resume(old)).toMatchObject({ status: 'completed', output: 'old' })
    expect(await resume(fresh)).toMatchObject({ status: 'completed', output: 'new' })
    expect(await names(old)).toEqual(['reserve', 'go', 'charge'])
    expect(await names(fresh)).toEqual(['patched:audit-first', 'audit', 'reserve', 'go', 'charge'])
    expect(ran.filter((r) => r.startsWith('old:'))).toEqual(['old:reserve', 'old:charge'])
    expect(ran.filter((r) => r.startsWith('fresh:'))).toEqual([
      'fresh:audit',
      'fresh:reserve',
      'fresh:charge',
    ])
  })

  it('an unguarded incompatible change still fails the in-flight execution loudly', async () => {
    const { start, resume } = run()
    deployed = 'v1'
    const old = await start('unguarded')
    deployed = 'v3-unguarded'
    expect(await resume(old)).toMatchObject({
      status: 'failed',
      error: { code: 'NON_DETERMINISTIC_REPLAY' },
    })
  })

  it('a durable call made while patched decides fails the run, on an execution recorded without it', async () => {
    let racingDeployed = 'v1'
    const racing = task({
      id: 'racing',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        await ctx.step('first', () => 1)
        if (racingDeployed === 'v1') await ctx.step('second', () => 2)
        // Not awaited before the next call: the position a `false` gives back is already taken.
        else await Promise.all([ctx.patched('late'), ctx.step('second', () => 2)])
        await ctx.waitForSignal('go')
        return 'done'
      },
    })
    const { engine } = openEngine({ racing })
    const { execution } = await engine.enqueue(racing, null)
    while ((await engine.executor.tick()).claimed > 0);
    racingDeployed = 'v2'
    await engine.signal(execution.id, 'go', null)
    while ((await engine.executor.tick()).claimed > 0);
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: {
        code: 'NON_DETERMINISTIC_REPLAY',
        message: expect.stringMatching(/must be awaited/) as unknown,
      },
    })
  })
})
