/**
 * Wake-ups that come too late, polling loops, and the cost of a checkpoint, at engine level
 * against real SQLite files. Time moves with a ManualClock; `executor.tick()` steps the
 * engine (one claim/run/settle pass: a run that parks settles as `waiting`).
 *
 * Side effects are counted outside the tasks, so replays are visible: code inside a step
 * runs once per execution.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ConflictError,
  StorageUnavailableError,
  NotFoundError,
  WaitTimeoutError,
  loop,
  task,
  type Engine,
  type StepWrite,
} from '@ratchet/core'
import type { SqliteStorage } from '@ratchet/storage'
import { T0, openEngine } from './open-engine'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** Everything a wakeup could change about an execution: its row, its history, its record. */
async function snapshot(engine: Engine, storage: SqliteStorage, id: string) {
  const { steps } = await storage.loadRunState(id)
  return { execution: await engine.get(id), history: (await engine.history(id)).items, steps }
}

describe('wakeups that find no waiting wait', () => {
  // Waits 1 hour for a wakeup; after a timeout it keeps waiting, for a signal that never comes.
  const approval = task({
    id: 'approval',
    input: z.object({ key: z.string() }),
    retry: { maxAttempts: 1 },
    run: async ({ key }, ctx) => {
      try {
        return await ctx.waitForWakeup<string>('approved', { key, timeoutMs: HOUR })
      } catch (error) {
        if (!(error instanceof WaitTimeoutError)) throw error
        return ctx.waitForSignal<string>('escalated')
      }
    },
  })

  it('a wait that timed out: ConflictError, and nothing changes', async () => {
    const { engine, storage, clock } = openEngine({ approval })
    const { execution } = await engine.enqueue(approval, { key: 'k-timeout' })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + HOUR })

    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    const before = await snapshot(engine, storage, execution.id)
    // The wakeup wait is over (timed out); the execution still waits, on its signal.
    expect(before.execution.status).toBe('waiting')
    expect(before.steps.map((s) => [s.name, s.status])).toEqual([
      ['approved', 'failed'],
      ['escalated', 'waiting'],
    ])

    await expect(engine.wakeup('k-timeout', { output: 'yes' })).rejects.toThrow(ConflictError)
    await expect(engine.wakeup('k-timeout', { error: { message: 'no', code: 'REJECTED' } })).rejects.toThrow(
      ConflictError,
    )

    expect(await snapshot(engine, storage, execution.id)).toEqual(before)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
  })

  it('an execution cancelled while waiting: ConflictError, and nothing changes', async () => {
    const { engine, storage } = openEngine({ approval })
    const { execution } = await engine.enqueue(approval, { key: 'k-cancel' })
    await engine.executor.tick()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    await engine.cancel(execution.id)
    const before = await snapshot(engine, storage, execution.id)
    expect(before.execution.status).toBe('cancelled')
    expect(before.steps.map((s) => [s.name, s.status])).toEqual([['approved', 'waiting']])

    await expect(engine.wakeup('k-cancel', { output: 'yes' })).rejects.toThrow(ConflictError)

    expect(await snapshot(engine, storage, execution.id)).toEqual(before)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
  })

  it('an unknown key: NotFoundError, and a wait under another key is untouched', async () => {
    const { engine, storage } = openEngine({ approval })
    const { execution } = await engine.enqueue(approval, { key: 'k-known' })
    await engine.executor.tick()
    const before = await snapshot(engine, storage, execution.id)
    expect(before.execution.status).toBe('waiting')

    await expect(engine.wakeup('k-unknown', { output: 'yes' })).rejects.toThrow(NotFoundError)

    expect(await snapshot(engine, storage, execution.id)).toEqual(before)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    // The known key still works: the checks above were not vacuous.
    await engine.wakeup('k-known', { output: 'yes' })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'yes' })
  })
})

describe('loop', () => {
  it('never done: fails with LOOP_EXHAUSTED after exactly maxAttempts iterations', async () => {
    let iterations = 0
    const poll = loop(
      'poll-never',
      () => {
        iterations++
        return { done: false }
      },
      { input: z.null(), maxAttempts: 5, sleepMs: 0 },
    )
    const { engine } = openEngine({ poll })
    const { execution } = await engine.enqueue(poll, null)

    // Sleeps of 0 ms are over as soon as they start: the whole loop runs in one attempt.
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: { name: 'TerminalError', code: 'LOOP_EXHAUSTED', retryable: false },
    })
    expect(iterations).toBe(5)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(iterations).toBe(5)
  })

  it('sleepMs(iteration) sleeps exactly those durations between iterations', async () => {
    const ranAt: number[] = []
    const sleepMs = (iteration: number) => iteration * 10 * MINUTE
    const { engine, clock } = openEngine({
      poll: loop(
        'poll-backoff',
        () => {
          ranAt.push(clock.now() - T0)
          return { done: false }
        },
        { input: z.null(), maxAttempts: 4, sleepMs },
      ),
    })
    const { execution } = await engine.enqueue('poll-backoff', null)

    await engine.executor.tick()
    let expectedAt = 0
    for (const iteration of [1, 2, 3]) {
      expectedAt += sleepMs(iteration)
      expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + expectedAt })
      // Not a moment early.
      clock.set(T0 + expectedAt - 1)
      expect(await engine.executor.tick()).toEqual({ claimed: 0 })
      clock.set(T0 + expectedAt)
      expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    }

    expect(ranAt).toEqual([0, 10 * MINUTE, 30 * MINUTE, 60 * MINUTE])
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: { code: 'LOOP_EXHAUSTED' },
    })
    // The history's wait records say the same: each sleep's wake time, once each.
    const waits = (await engine.history(execution.id)).items.filter((h) => h.event === 'wait')
    expect(waits.map((h) => [h.name, h.at - T0, (h.detail as { wakeAt: number }).wakeAt - T0])).toEqual([
      ['sleep-1', 0, 10 * MINUTE],
      ['sleep-2', 10 * MINUTE, 30 * MINUTE],
      ['sleep-3', 30 * MINUTE, 60 * MINUTE],
    ])
  })
})

describe('one step checkpoint is one write', () => {
  /** Wraps the storage's `recordSteps` to keep every write it is given, per call. */
  function countWrites(storage: SqliteStorage): StepWrite[][] {
    const calls: StepWrite[][] = []
    const recordSteps = storage.recordSteps.bind(storage)
    storage.recordSteps = (writes, now) => {
      calls.push([...writes])
      return recordSteps(writes, now)
    }
    return calls
  }

  /** How many writes each (execution, position) got: one checkpoint each means all ones. */
  function writesPerStep(calls: readonly StepWrite[][]): Map<string, number> {
    const counts = new Map<string, number>()
    for (const w of calls.flat()) {
      const key = `${w.executionId}#${w.step.position}:${w.step.name}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return counts
  }

  it('3 steps and no waits: exactly 3 step writes, one per step', async () => {
    const ran: string[] = []
    const three = task({
      id: 'three',
      input: z.null(),
      run: async (_input, ctx) => {
        for (const name of ['a', 'b', 'c']) await ctx.step(name, () => ran.push(name))
        return 'done'
      },
    })
    const { engine, storage } = openEngine({ three })
    const calls = countWrites(storage)
    const { execution } = await engine.enqueue(three, null)

    await engine.executor.tick()

    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'done' })
    expect(ran).toEqual(['a', 'b', 'c'])
    expect(calls.flat()).toHaveLength(3)
    expect([...writesPerStep(calls)]).toEqual([
      [`${execution.id}#0:a`, 1],
      [`${execution.id}#1:b`, 1],
      [`${execution.id}#2:c`, 1],
    ])
    expect(calls.flat().map((w) => [w.step.status, w.run])).toEqual([
      ['done', 1],
      ['done', 1],
      ['done', 1],
    ])
  })

  it('a replay after a 1-hour sleep writes nothing again for the steps before it, nor for the sleep', async () => {
    const ran: string[] = []
    const napper = task({
      id: 'napper',
      input: z.null(),
      run: async (_input, ctx) => {
        for (const name of ['a', 'b', 'c']) await ctx.step(name, () => ran.push(name))
        await ctx.sleep('nap', HOUR)
        await ctx.step('d', () => ran.push('d'))
        return 'rested'
      },
    })
    const { engine, storage, clock } = openEngine({ napper })
    const calls = countWrites(storage)
    const { execution } = await engine.enqueue(napper, null)

    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + HOUR })
    expect(calls.flat().map((w) => [w.step.name, w.step.status])).toEqual([
      ['a', 'done'],
      ['b', 'done'],
      ['c', 'done'],
      ['nap', 'waiting'],
    ])

    const writtenBefore = calls.flat().length
    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })

    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 'rested',
      runs: 2,
    })
    expect(ran).toEqual(['a', 'b', 'c', 'd'])
    // The replay wrote only the step after the sleep: one write per step over both runs.
    expect(
      calls
        .flat()
        .slice(writtenBefore)
        .map((w) => [w.step.name, w.step.status, w.run]),
    ).toEqual([['d', 'done', 2]])
    expect([...writesPerStep(calls).values()]).toEqual([1, 1, 1, 1, 1])
    const { steps } = await storage.loadRunState(execution.id)
    expect(steps.map((s) => [s.position, s.name])).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'c'],
      [3, 'nap'],
      [4, 'd'],
    ])
  })
})

describe('a failed step write', () => {
  it('is retried alone: the other writes of its batch are written, only its own attempt fails', async () => {
    const stepper = task({
      id: 'stepper',
      input: z.object({ name: z.string() }),
      retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 1, maxMs: 1000 } },
      run: async ({ name }, ctx) => ctx.step(name, () => `${name} done`),
    })
    const { engine, storage } = openEngine({ stepper })
    // The storage refuses any transaction holding the write of step "poison" (a constraint
    // the adapter enforces, a value it cannot store): the rest of the batch is fine.
    const calls: string[][] = []
    const recordSteps = storage.recordSteps.bind(storage)
    storage.recordSteps = async (writes, now) => {
      calls.push(writes.map((w) => w.step.name))
      if (writes.some((w) => w.step.name === 'poison')) throw new Error('cannot store step "poison"')
      return recordSteps(writes, now)
    }
    const names = ['a', 'poison', 'b']
    const ids = []
    for (const name of names) ids.push((await engine.enqueue(stepper, { name })).execution.id)

    expect(await engine.executor.tick()).toEqual({ claimed: 3 })

    // One batch of three, then each write alone.
    expect(calls).toEqual([names, ['a'], ['poison'], ['b']])
    const [a, poison, b] = await Promise.all(ids.map((id) => engine.get(id)))
    expect(a).toMatchObject({ status: 'completed', output: 'a done', failures: 0 })
    expect(b).toMatchObject({ status: 'completed', output: 'b done', failures: 0 })
    expect(poison).toMatchObject({
      status: 'queued',
      failures: 1,
      error: { message: 'cannot store step "poison"' },
    })
  })
})

describe('a delayed enqueue', () => {
  /** Lets the engine's pending passes run (they run on real I/O; the ManualClock holds its timers). */
  const settled = async () => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const later = task({ id: 'later', input: z.number(), run: (n) => n })

  it('arms the due timer without a storage call, and the execution starts when it is due', async () => {
    const { engine, storage, clock } = openEngine({ later }, { pollIntervalMs: 10 * HOUR })
    const calls: string[] = []
    for (const name of ['claim', 'nextDueAt', 'housekeep'] as const) {
      const original = storage[name].bind(storage) as (...args: unknown[]) => unknown
      ;(storage as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        calls.push(name)
        return original(...args)
      }
    }
    engine.start()
    // Start-up reads what is due (housekeep, claim, nextDueAt): let it settle.
    await settled()
    calls.length = 0

    const { execution } = await engine.enqueue(later, 1, { delayMs: MINUTE })
    await settled()
    expect(calls).toEqual([])

    // Due: the timer fires, and the one pass claims and runs it.
    clock.advance(MINUTE)
    expect(await engine.waitFor(execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
      output: 1,
    })
    expect(calls.filter((c) => c === 'claim').length).toBeGreaterThan(0)
  })

  it('enqueued while a pass reads the next due time (from before it was written), it still starts when due', async () => {
    const { engine, storage, clock } = openEngine({ later }, { pollIntervalMs: 10 * HOUR })
    engine.start()
    await settled()
    // The next pass's due-time read answers from before the delayed enqueue, then waits.
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const nextDueAt = storage.nextDueAt.bind(storage)
    let held = false
    storage.nextDueAt = async (taskIds) => {
      const answer = await nextDueAt(taskIds)
      if (!held) {
        held = true
        await gate
      }
      return answer
    }
    const now = await engine.enqueue(later, 1)
    await settled()
    expect(held).toBe(true)
    const { execution } = await engine.enqueue(later, 2, { delayMs: MINUTE })
    open()
    expect(await engine.waitFor(now.execution.id, { timeoutMs: 5000 })).toMatchObject({ status: 'completed' })
    await settled()
    clock.advance(MINUTE)
    expect(await engine.waitFor(execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
      output: 2,
    })
  })

  it('due now it starts at once; a delayed one enqueued again under its key starts when due', async () => {
    const { engine, clock } = openEngine({ later }, { pollIntervalMs: 10 * HOUR })
    engine.start()
    const { execution } = await engine.enqueue(later, 2)
    expect(await engine.waitFor(execution.id, { timeoutMs: 5000 })).toMatchObject({ status: 'completed' })
    const keyed = await engine.enqueue(later, 3, { delayMs: MINUTE, idempotencyKey: 'k' })
    const again = await engine.enqueue(later, 3, { delayMs: MINUTE, idempotencyKey: 'k' })
    expect(again).toMatchObject({ created: false, execution: { id: keyed.execution.id } })
    clock.advance(MINUTE)
    expect(await engine.waitFor(keyed.execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
    })
  })
})

describe('claims follow the work', () => {
  const quick = task({ id: 'quick', input: z.number(), run: (n) => n })
  const flaky = task({
    id: 'flaky',
    input: z.number(),
    retry: { maxAttempts: 2, backoff: { initialMs: 1000, factor: 1, maxMs: 1000 } },
    run: (n, ctx) => {
      if (ctx.attempt === 1) throw new Error('first run fails')
      return n
    },
  })

  function countClaims(storage: SqliteStorage): { claims: number } {
    const counter = { claims: 0 }
    const claim = storage.claim.bind(storage)
    storage.claim = (request) => {
      counter.claims++
      return claim(request)
    }
    return counter
  }
  const settled = async () => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  it('runs that end once the queue is drained free their slots without a claim that would find nothing', async () => {
    const { engine, storage } = openEngine({ quick }, { pollIntervalMs: 10 * HOUR })
    engine.start()
    await settled()
    const counter = countClaims(storage)
    const results = await engine.enqueueMany([1, 2, 3].map((n) => ({ task: quick, input: n })))
    for (const { execution } of results)
      expect(await engine.waitFor(execution.id, { timeoutMs: 5000 })).toMatchObject({ status: 'completed' })
    await settled()
    // One claim took all three; their ends (and their written results) claimed nothing more.
    expect(counter.claims).toBe(1)
  })

  it('a run that ends in a retry is claimed again when the retry is due', async () => {
    const { engine, storage, clock } = openEngine({ flaky }, { pollIntervalMs: 10 * HOUR })
    engine.start()
    await settled()
    const counter = countClaims(storage)
    const { execution } = await engine.enqueue(flaky, 7)
    await settled()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', failures: 1 })
    clock.advance(1000)
    expect(await engine.waitFor(execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
      output: 7,
    })
    expect(counter.claims).toBeGreaterThanOrEqual(2)
  })
})

describe('a write that failed as unreachable may have committed', () => {
  const approval = task({
    id: 'approval',
    input: z.object({}),
    run: (_input, ctx) => ctx.waitForSignal<string>('approved'),
  })

  it('a signal whose reply was lost still wakes the claim loop: the execution goes on at once', async () => {
    const { engine, storage } = openEngine({ approval }, { pollIntervalMs: 10 * HOUR })
    engine.start()
    const { execution } = await engine.enqueue(approval, {})
    for (let i = 0; i < 50 && (await engine.get(execution.id)).status !== 'waiting'; i++)
      await new Promise((resolve) => setTimeout(resolve, 10))
    expect((await engine.get(execution.id)).status).toBe('waiting')
    // Committed, then the connection dropped before the reply.
    const signal = storage.signal.bind(storage)
    storage.signal = async (...args) => {
      await signal(...args)
      throw new StorageUnavailableError('connection lost during COMMIT')
    }
    await expect(engine.signal(execution.id, 'approved', 'yes')).rejects.toThrow(StorageUnavailableError)
    expect(await engine.waitFor(execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
      output: 'yes',
    })
  })
})
