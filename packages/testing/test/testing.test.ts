/**
 * @ratchet/testing, used as a user would in their own unit tests: each test is also an
 * example. Time moves on the manual clock only; the real-time bounds below show that
 * back-offs, sleeps and timeouts pass without waiting for them.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import {
  ConflictError,
  ManualClock,
  NotFoundError,
  TerminalError,
  WaitTimeoutError,
  fanOut,
  loop,
  task,
  type TaskMap,
} from '@ratchet/core'
import { createTestEngine, type TestEngineOptions } from '@ratchet/testing'

const T0 = Date.UTC(2030, 0, 1)
const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** A test engine closed when the test ends. */
async function testEngine(tasks: TaskMap, options: Omit<TestEngineOptions, 'tasks'> = {}) {
  const t = await createTestEngine({ tasks, ...options })
  onTestFinished(() => t.close())
  return t
}

/** Resolves with what `fn` resolves with and how long it took in real time. */
async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; realMs: number }> {
  const started = performance.now()
  const result = await fn()
  return { result, realMs: performance.now() - started }
}

describe('running a workflow to the end', () => {
  it('runs every step, and steps() shows the durable record', async () => {
    const checkout = task({
      id: 'checkout',
      input: z.object({ cartId: z.string() }),
      run: async ({ cartId }, ctx) => {
        const total = await ctx.step('price', () => 42)
        const charge = await ctx.step('charge', async () => {
          await new Promise((resolve) => setTimeout(resolve, 5)) // real timers work in task bodies
          return { chargeId: `ch_${cartId}`, total }
        })
        await ctx.step('email', () => undefined)
        return { ...charge, emailed: true }
      },
    })
    const t = await testEngine({ checkout })

    const done = await t.run(checkout, { cartId: 'c1' })

    expect(done).toMatchObject({
      status: 'completed',
      output: { chargeId: 'ch_c1', total: 42, emailed: true },
      runs: 1,
      attempt: 1,
      failures: 0,
      recoveries: 0,
    })
    expect(await t.steps(done.id)).toMatchObject([
      { position: 0, name: 'price', kind: 'step', status: 'done', value: 42, error: null },
      { position: 1, name: 'charge', kind: 'step', status: 'done', value: { chargeId: 'ch_c1', total: 42 } },
      { position: 2, name: 'email', kind: 'step', status: 'done', value: null },
    ])
    expect(t.now()).toBe(T0) // nothing waited, so the clock did not move
  })

  it('enqueue, then runUntilSettled, by task id; get and list see the execution', async () => {
    const double = task({ id: 'double', input: z.number(), run: (n) => n * 2 })
    const t = await testEngine({ double })

    const { executionId, created } = await t.enqueue('double', 21)
    expect(created).toBe(true)
    expect(await t.get(executionId)).toMatchObject({ status: 'queued' })

    expect(await t.runUntilSettled(executionId)).toMatchObject({ status: 'completed', output: 42 })
    expect((await t.list({ taskId: 'double' })).items.map((e) => e.id)).toEqual([executionId])
  })

  it('returns a failed execution rather than throwing', async () => {
    const broken = task({
      id: 'broken',
      input: z.object({}),
      run: () => {
        throw new TerminalError('no such customer', { code: 'NO_CUSTOMER' })
      },
    })
    const t = await testEngine({ broken })

    expect(await t.run(broken, {})).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { name: 'TerminalError', code: 'NO_CUSTOMER', message: 'no such customer', retryable: false },
    })
  })
})

describe('time', () => {
  it('passes back-off delays at once: a task that fails twice completes in a few ms of real time', async () => {
    let calls = 0
    const flaky = task({
      id: 'flaky',
      input: z.object({}),
      retry: { maxAttempts: 3, backoff: { initialMs: MINUTE, factor: 2, maxMs: 10 * MINUTE } },
      run: () => {
        calls++
        if (calls <= 2) throw new Error(`upstream unavailable (call ${calls})`)
        return 'ok'
      },
    })
    const t = await testEngine({ flaky })

    const { result: done, realMs } = await timed(() => t.run(flaky, {}))

    expect(done).toMatchObject({ status: 'completed', output: 'ok', runs: 3, attempt: 3, failures: 2 })
    expect(realMs).toBeLessThan(1000)
    // Jitter is fixed at half the ceiling by default: 30 s after the first failure, 60 s after the second.
    expect(t.now()).toBe(T0 + 30_000 + 60_000)
    const statuses = (await t.history(done.id)).items.filter((h) => h.event === 'status')
    expect(statuses.map((h) => [h.from, h.to, h.at - T0])).toEqual([
      [null, 'queued', 0],
      ['queued', 'running', 0],
      ['running', 'queued', 0],
      ['queued', 'running', 30_000],
      ['running', 'queued', 30_000],
      ['queued', 'running', 90_000],
      ['running', 'completed', 90_000],
    ])
  })

  it('passes a 30-day sleep at once', async () => {
    const trial = task({
      id: 'trial',
      input: z.object({ userId: z.string() }),
      run: async ({ userId }, ctx) => {
        await ctx.step('start-trial', () => userId)
        await ctx.sleep('trial-period', 30 * DAY)
        return ctx.step('end-trial', () => 'ended')
      },
    })
    const t = await testEngine({ trial })

    const { result: done, realMs } = await timed(() => t.run(trial, { userId: 'u1' }))

    expect(done).toMatchObject({ status: 'completed', output: 'ended' })
    expect(realMs).toBeLessThan(1000)
    expect(t.now()).toBe(T0 + 30 * DAY)
    expect(await t.steps(done.id)).toMatchObject([
      { name: 'start-trial', status: 'done' },
      { name: 'trial-period', kind: 'sleep', status: 'done', wakeAt: T0 + 30 * DAY },
      { name: 'end-trial', status: 'done' },
    ])
  })

  it('starts the clock where you say, and advance() moves it', async () => {
    const noop = task({ id: 'noop', input: z.null(), run: () => null })
    const t = await testEngine({ noop }, { start: new Date('2031-06-01T12:00:00Z') })

    expect(t.clock).toBeInstanceOf(ManualClock)
    await t.advance(5 * MINUTE)
    expect(new Date(t.now()).toISOString()).toBe('2031-06-01T12:05:00.000Z')
    await expect(t.advance(-1)).rejects.toThrow(RangeError)
  })

  /** A step that fails twice, retried in-process with ceilings of 1000 ms then 2000 ms; when each try ran. */
  async function stepRetryTimes(options: { random?: () => number } = {}) {
    const triedAt: number[] = []
    let clock: () => number = () => NaN
    const sync = task({
      id: 'sync',
      input: z.object({}),
      run: (_input, ctx) =>
        ctx.step(
          'push',
          () => {
            triedAt.push(clock() - T0)
            if (triedAt.length < 3) throw new Error('busy')
            return triedAt.length
          },
          { retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 2, maxMs: 10_000 } } },
        ),
    })
    const t = await testEngine({ sync }, options)
    clock = () => t.now()
    const { result: done, realMs } = await timed(() => t.run(sync, {}))
    return { done, realMs, triedAt, now: t.now() }
  }

  it("passes a step's own retry back-off at once, inside one attempt, with the configured delays", async () => {
    const { done, realMs, triedAt, now } = await stepRetryTimes()
    expect(done).toMatchObject({ status: 'completed', output: 3, attempt: 1, failures: 0 })
    expect(realMs).toBeLessThan(1000)
    // Ceilings of 1000 ms then 2000 ms; the default jitter (0.5) waits half of each.
    expect(triedAt).toEqual([0, 500, 500 + 1000])
    expect(now).toBe(T0 + 1500)
  })

  it("a step's retry back-off draws its jitter from the random option", async () => {
    const { done, triedAt } = await stepRetryTimes({ random: () => 0.9999 })
    expect(done).toMatchObject({ status: 'completed', output: 3 })
    // floor(0.9999 * 1000) = 999, then floor(0.9999 * 2000) = 1999: just under each ceiling.
    expect(triedAt).toEqual([0, 999, 999 + 1999])
  })

  it('times out an attempt that never returns, after hungAttemptMs of real time', async () => {
    const stuck = task({
      id: 'stuck',
      input: z.object({}),
      timeoutMs: 5 * MINUTE,
      retry: { maxAttempts: 2, backoff: { initialMs: 0 } },
      // A well-behaved task gives up when ctx.signal aborts (timeout, cancel, shutdown).
      run: (_input, ctx) =>
        new Promise<never>((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)),
        ),
    })
    const t = await testEngine({ stuck }, { hungAttemptMs: 20 })

    const done = await t.run(stuck, {})

    expect(done).toMatchObject({
      status: 'timed_out',
      failures: 2,
      error: { name: 'TimeoutError', code: 'TIMEOUT' },
    })
    expect(t.now()).toBe(T0 + 2 * 5 * MINUTE)
  })
})

describe('signals', () => {
  const approval = task({
    id: 'approval',
    input: z.object({ documentId: z.string() }),
    run: async ({ documentId }, ctx) => {
      const decision = await ctx.waitForSignal('decision', { schema: z.object({ approved: z.boolean() }) })
      return { documentId, ...decision }
    },
  })

  it('returns a waiting execution, which a signal then lets finish', async () => {
    const t = await testEngine({ approval })

    const waiting = await t.run(approval, { documentId: 'd1' })
    expect(waiting.status).toBe('waiting')
    expect(await t.steps(waiting.id)).toMatchObject([
      { name: 'decision', kind: 'signal', status: 'waiting', signalName: 'decision' },
    ])

    await t.signal(waiting.id, 'decision', { approved: true })
    const done = await t.runUntilSettled(waiting.id)

    expect(done).toMatchObject({ status: 'completed', output: { documentId: 'd1', approved: true } })
    expect(await t.steps(done.id)).toMatchObject([
      { name: 'decision', status: 'done', value: { approved: true } },
    ])
  })

  it('until stops the clock before a wait times out; without it the timeout passes', async () => {
    const reminder = task({
      id: 'reminder',
      input: z.object({}),
      run: async (_input, ctx) => {
        await ctx.sleep('cool-off', HOUR)
        try {
          return await ctx.waitForSignal<string>('reply', { timeoutMs: 2 * DAY })
        } catch (error) {
          if (error instanceof WaitTimeoutError) return 'no reply'
          throw error
        }
      },
    })
    const t = await testEngine({ reminder })

    // The sleep passes; the wait's timeout (2 days later) is past `until`, so the run stops there.
    const first = await t.run(reminder, {}, { until: T0 + DAY })
    expect(first.status).toBe('waiting')
    expect(t.now()).toBe(T0 + HOUR)
    await t.signal(first.id, 'reply', 'yes')
    expect(await t.runUntilSettled(first.id)).toMatchObject({ status: 'completed', output: 'yes' })

    const second = await t.run(reminder, {})
    expect(second).toMatchObject({ status: 'completed', output: 'no reply' })
    expect(t.now()).toBe(T0 + HOUR + HOUR + 2 * DAY)
  })
})

describe('wake-ups', () => {
  const payment = task({
    id: 'payment',
    input: z.object({ orderId: z.string() }),
    run: async ({ orderId }, ctx) => {
      await ctx.step('create-intent', () => `pi_${orderId}`)
      const paid = await ctx.waitForWakeup<{ amount: number }>('paid', {
        key: `payment:${orderId}`,
        timeoutMs: DAY,
      })
      return { orderId, amount: paid.amount }
    },
  })

  it('wakeup(key, { output }) completes the wait, and runUntilSettled finishes the run', async () => {
    const t = await testEngine({ payment })
    const waiting = await t.run(payment, { orderId: 'o1' }, { until: t.now() })
    expect(waiting.status).toBe('waiting')
    expect((await t.steps(waiting.id))[1]).toMatchObject({ name: 'paid', kind: 'wakeup', status: 'waiting' })

    expect(await t.wakeup('payment:o1', { output: { amount: 1250 } })).toEqual({ executionId: waiting.id })
    const done = await t.runUntilSettled(waiting.id)

    expect(done).toMatchObject({ status: 'completed', output: { orderId: 'o1', amount: 1250 } })
    expect((await t.steps(done.id))[1]).toMatchObject({
      name: 'paid',
      status: 'done',
      value: { amount: 1250 },
    })
    expect(t.now()).toBe(T0) // woken before its timeout: the clock never moved
  })

  it('wakeup(key, { error }) throws inside the run: uncaught, it fails the execution without a retry', async () => {
    const t = await testEngine({ payment })
    const waiting = await t.run(payment, { orderId: 'o2' }, { until: t.now() })

    await t.wakeup('payment:o2', { error: { message: 'card declined', code: 'DECLINED' } })
    const done = await t.runUntilSettled(waiting.id)

    expect(done).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { name: 'WakeupError', message: 'card declined', code: 'DECLINED', retryable: false },
    })
  })

  it('an unknown key is a NotFoundError; a woken, timed-out or ended wait is a ConflictError', async () => {
    const t = await testEngine({ payment })
    await expect(t.wakeup('payment:nobody', { output: null })).rejects.toThrow(NotFoundError)

    // Woken twice: the second wakeup changes nothing.
    const first = await t.run(payment, { orderId: 'o3' }, { until: t.now() })
    await t.wakeup('payment:o3', { output: { amount: 1 } })
    await expect(t.wakeup('payment:o3', { output: { amount: 2 } })).rejects.toThrow(ConflictError)
    expect(await t.runUntilSettled(first.id)).toMatchObject({ output: { amount: 1 } })
    // Its execution ended.
    await expect(t.wakeup('payment:o3', { output: { amount: 3 } })).rejects.toThrow(ConflictError)

    // Timed out: the 1-day timeout passes, the wait throws WaitTimeoutError and the run fails.
    const late = await t.run(payment, { orderId: 'o4' })
    expect(late).toMatchObject({ status: 'failed', error: { name: 'WaitTimeoutError' } })
    const steps = await t.steps(late.id)
    await expect(t.wakeup('payment:o4', { output: { amount: 4 } })).rejects.toThrow(ConflictError)
    expect(await t.steps(late.id)).toEqual(steps)
    expect(await t.get(late.id)).toEqual(late)
  })
})

describe('children', () => {
  const resize = task({
    id: 'resize',
    input: z.object({ imageId: z.string() }),
    retry: { maxAttempts: 2, backoff: { initialMs: 5 * MINUTE } },
    run: ({ imageId }) => {
      if (imageId === 'bad') throw new Error(`cannot decode ${imageId}`)
      return `${imageId}.small.png`
    },
  })
  const resizeAll = fanOut('resize-all', {
    input: z.object({ imageIds: z.array(z.string()) }),
    children: ({ imageIds }) =>
      imageIds.map((imageId) => ({ task: resize, input: { imageId }, name: imageId })),
    finalize: (results) => ({
      resized: results.flatMap((r) => (r.ok ? [r.value] : [])),
      failed: results.filter((r) => !r.ok).length,
    }),
  })

  it('runs a parent and its children within runUntilSettled', async () => {
    const t = await testEngine({ resizeAll, resize })

    const done = await t.run(resizeAll, { imageIds: ['a', 'b', 'bad'] })

    expect(done).toMatchObject({
      status: 'completed',
      output: { resized: ['a.small.png', 'b.small.png'], failed: 1 },
    })
    const children = (await t.list({ parentId: done.id })).items
    expect(children.map((c) => c.status).sort()).toEqual(['completed', 'completed', 'failed'])
    expect(children.every((c) => c.rootId === done.id)).toBe(true)
    // A child step shows how its child ended.
    const steps = await t.steps(done.id)
    expect(steps).toMatchObject([
      { name: 'a', kind: 'child', status: 'done', value: 'a.small.png' },
      { name: 'b', kind: 'child', status: 'done', value: 'b.small.png' },
      {
        name: 'bad',
        kind: 'child',
        status: 'failed',
        error: {
          name: 'ChildExecutionError',
          message: expect.stringContaining('cannot decode bad') as unknown,
        },
      },
      { name: 'finalize', kind: 'step', status: 'done', value: done.output },
    ])
    // A list has no outputs: the child's own execution does.
    const outputs = await Promise.all(children.map(async (c) => [c.id, (await t.get(c.id)).output] as const))
    expect(steps[0]!.childId).toBe(outputs.find(([, output]) => output === 'a.small.png')![0])
  })
})

describe('what a parent saw of a child', () => {
  it("a child step shows what the parent's run recorded, even after the child is retried", async () => {
    let fixed = false
    const shaky = task({
      id: 'shaky',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: () => {
        if (!fixed) throw new TerminalError('not yet', { code: 'NOT_YET' })
        return 'ok'
      },
    })
    const tolerant = task({
      id: 'tolerant',
      input: z.null(),
      run: async (_input, ctx) => {
        try {
          return await ctx.child('shaky', shaky, null)
        } catch {
          return 'gave up'
        }
      },
    })
    const t = await testEngine({ tolerant, shaky })
    const done = await t.run(tolerant, null)
    expect(done.output).toBe('gave up')
    const [kid] = (await t.list({ parentId: done.id })).items

    fixed = true
    await t.engine.retry(kid!.id)
    expect(await t.runUntilSettled(kid!.id)).toMatchObject({ status: 'completed', output: 'ok' })

    // The parent caught the child's failure: that is its record, whatever the child did since.
    expect(await t.steps(done.id)).toMatchObject([
      {
        name: 'shaky',
        kind: 'child',
        status: 'failed',
        error: { name: 'ChildExecutionError', code: 'NOT_YET' },
        childId: kid!.id,
      },
    ])
  })
})

describe('stepping by hand', () => {
  it('tick() runs one claim/run/settle pass', async () => {
    const leaf = task({ id: 'leaf', input: z.number(), run: (n) => n + 1 })
    const root = task({ id: 'root', input: z.number(), run: (n, ctx) => ctx.child('leaf', leaf, n) })
    const t = await testEngine({ root, leaf })
    const { executionId } = await t.enqueue(root, 1)

    expect(await t.tick()).toEqual({ claimed: 1 }) // root starts its child and parks
    expect((await t.get(executionId)).status).toBe('waiting')
    expect(await t.tick()).toEqual({ claimed: 1 }) // the child completes and wakes root
    expect(await t.tick()).toEqual({ claimed: 1 }) // root resumes and completes
    expect(await t.get(executionId)).toMatchObject({ status: 'completed', output: 2 })
    expect(await t.tick()).toEqual({ claimed: 0 })
  })
})

describe('cancel', () => {
  it('cancels a waiting execution and its children', async () => {
    const forever = task({
      id: 'forever',
      input: z.object({}),
      run: (_input, ctx) => ctx.waitForSignal('never'),
    })
    const parent = task({
      id: 'parent',
      input: z.object({}),
      run: (_input, ctx) => ctx.child('wait', forever, {}),
    })
    const t = await testEngine({ parent, forever })

    const waiting = await t.run(parent, {})
    expect(waiting.status).toBe('waiting')

    expect(await t.cancel(waiting.id)).toMatchObject({ status: 'cancelled' })
    expect((await t.list({ rootId: waiting.id })).items.map((e) => e.status)).toEqual([
      'cancelled',
      'cancelled',
    ])
    expect(await t.runUntilSettled(waiting.id)).toMatchObject({ status: 'cancelled' })
  })
})

describe('errors', () => {
  it('runUntilSettled throws a clear error after maxTicks', async () => {
    const poll = loop('poll', () => ({ done: false }), {
      input: z.object({}),
      maxAttempts: 1000,
      sleepMs: MINUTE,
    })
    const t = await testEngine({ poll })
    const { executionId } = await t.enqueue(poll, {})

    await expect(t.runUntilSettled(executionId, { maxTicks: 20 })).rejects.toThrow(
      new RegExp(`execution ${executionId} \\(task "poll"\\) is still (waiting|queued) after 20 ticks`),
    )
    // Each iteration is one tick that runs it and one that finds nothing due, after which the
    // clock jumps to the end of its sleep: 10 iterations ran and 9 sleeps passed.
    expect((await t.steps(executionId)).filter((s) => s.kind === 'step')).toHaveLength(10)
    expect(t.now()).toBe(T0 + 9 * MINUTE)
  })

  it('an unknown id is a NotFoundError; a bad input is a ValidationError', async () => {
    const greet = task({
      id: 'greet',
      input: z.object({ name: z.string() }),
      run: ({ name }) => `hi ${name}`,
    })
    const t = await testEngine({ greet })

    await expect(t.runUntilSettled('nope')).rejects.toThrow(NotFoundError)
    await expect(t.steps('nope')).rejects.toThrow(NotFoundError)
    // @ts-expect-error -- the input is typed from the task's schema, and checked at run time too
    await expect(t.run(greet, { name: 1 })).rejects.toMatchObject({ name: 'ValidationError' })
  })

  it('refuses a second run while one is in progress, and any call after close()', async () => {
    const slow = task({
      id: 'slow',
      input: z.object({}),
      run: () => new Promise((resolve) => setTimeout(() => resolve('done'), 20)),
    })
    const t = await createTestEngine({ tasks: { slow } })

    const { executionId } = await t.enqueue(slow, {})
    const first = t.runUntilSettled(executionId)
    await expect(t.runUntilSettled(executionId)).rejects.toThrow(/runUntilSettled\(\) is still in progress/)
    await expect(t.tick()).rejects.toThrow(/runUntilSettled\(\) is still in progress/)
    expect(await first).toMatchObject({ status: 'completed', output: 'done' })

    await t.close()
    await t.close()
    await expect(t.run(slow, {})).rejects.toThrow(/closed/)
    await expect(t.get(executionId)).rejects.toThrow(/get\(\): this test engine is closed/)
  })
})

describe('the README example', () => {
  // The onboarding workflow of docs/durable-functions.md, with its I/O replaced by fakes.
  const sendWelcomeEmail = task({
    id: 'send-welcome-email',
    input: z.object({ userId: z.string(), email: z.string() }),
    run: ({ email }) => `sent to ${email}`,
  })
  const syncCrmContact = task({
    id: 'sync-crm-contact',
    input: z.object({ userId: z.string() }),
    run: ({ userId }) => `crm-${userId}`,
  })
  const onboard = task({
    id: 'onboard',
    input: z.object({ userId: z.string() }),
    run: async ({ userId }, ctx) => {
      const user = await ctx.step('fetch-user', () => ({ email: `${userId}@example.com` }))
      await ctx.sleep('grace-period', 10 * MINUTE)
      const approved = await ctx.waitForSignal<{ ok: boolean }>('approval', { timeoutMs: DAY })
      const [welcome, crm] = await ctx.all([
        ctx.child('welcome', sendWelcomeEmail, { userId, email: user.email }),
        ctx.child('crm', syncCrmContact, { userId }),
      ])
      return { approved: approved.ok, welcome, crm }
    },
  })
  const tasks = { onboard, sendWelcomeEmail, syncCrmContact }

  it('onboards a user once approved', async () => {
    const t = await createTestEngine({ tasks })
    onTestFinished(() => t.close())

    // The 10-minute sleep passes at once; stop before the approval wait's 1-day timeout does.
    const waiting = await t.run(tasks.onboard, { userId: 'u1' }, { until: t.now() + 3_600_000 })
    expect(waiting.status).toBe('waiting')

    await t.signal(waiting.id, 'approval', { ok: true })
    const done = await t.runUntilSettled(waiting.id) // children run too
    expect(done).toMatchObject({ status: 'completed', output: { approved: true } })
    expect((await t.steps(done.id))[2]).toMatchObject({ name: 'approval', value: { ok: true } })
    expect(done.output).toEqual({ approved: true, welcome: 'sent to u1@example.com', crm: 'crm-u1' })
  })
})
