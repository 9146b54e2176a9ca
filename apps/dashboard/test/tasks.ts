/**
 * Tasks of the dashboard's end-to-end test: a workflow with a fan-out and a sequence of
 * children, a task that fails with a cause, waits on a signal and a wake-up, a long sleeper to
 * cancel, and one started by an event.
 */
import { z } from 'zod'
import { sequence, task } from '@ratchet/core'

/** The task the enqueue form is tested on: a string, an integer, a boolean and an enum. */
export const greet = task({
  id: 'greet',
  description: 'Greets someone a few times',
  input: z.object({
    name: z.string().min(1).describe('Who to greet'),
    times: z.number().int().min(1).max(5),
    loud: z.boolean().optional(),
    lang: z.enum(['en', 'fr']).optional(),
  }),
  run: async ({ name, times, loud, lang }, ctx) =>
    ctx.step('compose', () => {
      const word = lang === 'fr' ? 'Bonjour' : 'Hello'
      const text = Array.from({ length: times }, () => `${word} ${name}`).join(', ')
      return loud ? text.toUpperCase() : text
    }),
})

export const leaf = task({
  id: 'leaf',
  input: z.object({ n: z.number() }),
  run: async ({ n }, ctx) => {
    const doubled = await ctx.step('double', () => n * 2)
    await ctx.sleep('pause', 30 * (n + 1))
    return { n: doubled }
  },
})

export const addOne = task({
  id: 'add-one',
  input: z.object({ n: z.number() }),
  run: async ({ n }, ctx) => ({ n: await ctx.step('add', () => n + 1) }),
})

export const pipeline = sequence('pipeline', [addOne, addOne, addOne])

/** Fans out to three leaves, then runs a sequence of three children, then a finalize step. */
export const workflow = task({
  id: 'workflow',
  description: 'Fan-out of three leaves, then a sequence, then a finalize step',
  input: z.object({ size: z.number().int().min(1).max(10) }),
  run: async ({ size }, ctx) => {
    const prepared = await ctx.step('prepare', () => size)
    const leaves = await ctx.all(
      Array.from({ length: prepared }, (_, i) => ctx.child(`leaf-${i}`, leaf, { n: i })),
    )
    const total = leaves.reduce((sum, l) => sum + l.n, 0)
    const chained = await ctx.child('pipeline', pipeline, { n: total })
    return ctx.step('finalize', () => ({ total, chained: chained.n }))
  },
})

/** Always fails, with a cause, after one attempt. */
export const flaky = task({
  id: 'flaky',
  description: 'Fails every time (the upstream is down)',
  input: z.object({}),
  retry: { maxAttempts: 1 },
  run: async (_input, ctx) => {
    await ctx.step('call-upstream', () => {
      throw new Error('upstream answered 503', { cause: new Error('connection reset by peer') })
    })
  },
})

export const approval = task({
  id: 'approval',
  description: 'Waits for the signal "approve"',
  input: z.object({}),
  run: (_input, ctx) => ctx.waitForSignal<{ ok: boolean }>('approve'),
})

export const webhook = task({
  id: 'webhook',
  description: 'Waits to be woken up under the key it is given',
  input: z.object({ key: z.string() }),
  run: ({ key }, ctx) => ctx.waitForWakeup<{ paid: boolean }>('payment', { key }),
})

export const sleeper = task({
  id: 'sleeper',
  description: 'Sleeps for an hour',
  input: z.object({}),
  run: async (_input, ctx) => {
    await ctx.sleep('nap', 3600_000)
    return 'rested'
  },
})

export const onSignup = task({
  id: 'on-signup',
  description: 'Started by user.created events',
  input: z.object({ type: z.literal('user.created'), userId: z.string() }),
  on: ['user.created'],
  run: (event) => ({ welcomed: event.userId }),
})

export const tasks = { greet, leaf, addOne, pipeline, workflow, flaky, approval, webhook, sleeper, onSignup }
