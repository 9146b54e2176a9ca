/**
 * Durable functions at engine level, against real SQLite files: steps and replay, durable
 * sleeps, signals, children and task trees, subtree cancellation, deadlines, history, and
 * attempts versus failures. Time moves with a ManualClock; `executor.tick()` steps the
 * engine (one claim/run/settle pass: a run that parks settles as `waiting`).
 *
 * Side effects are counted outside the tasks (`hits`, arrays in the test), so replays are
 * visible: code inside a step runs once per execution, code between steps once per attempt.
 */
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import {
  ChildExecutionError,
  ConflictError,
  Engine,
  DeadlineExceededError,
  NotFoundError,
  TerminalError,
  ValidationError,
  WAIT_FOREVER,
  WaitTimeoutError,
  serializeError,
  systemClock,
  task,
  type Clock,
  type EngineOptions,
  type Execution,
  type ManualClock,
  type TaskMap,
} from '@ratchet/core'
import type { SqliteStorage } from '@ratchet/storage'
import { T0, openEngine } from './open-engine'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

// ── side-effect counters, outside every task ─────────────────────────────────────────

const counts = new Map<string, number>()
/** Counts one run of the code labelled `label`; returns the count so far. */
function hit(label: string): number {
  const n = (counts.get(label) ?? 0) + 1
  counts.set(label, n)
  return n
}
const hits = (label: string) => counts.get(label) ?? 0

beforeEach(() => counts.clear())

// ── helpers ──────────────────────────────────────────────────────────────────────────

/** Lets pending setImmediate callbacks (pumps, flushes) run. Not a sleep: no time passes. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Turns the event loop until `condition` holds (no time passes on the ManualClock). */
async function until(condition: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return
    await turn()
  }
  throw new Error(`${what} did not happen`)
}

/** Turns the event loop until the execution's history has the in-run event `name`. */
async function untilRecorded(engine: Engine, id: string, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await engine.history(id)).items.some((h) => h.name === name)) return
    await turn()
  }
  throw new Error(`"${name}" was not recorded`)
}

/** Rejects with the signal's reason when it aborts: what a well-behaved task does. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
  )

interface Setup {
  engine: Engine
  storage: SqliteStorage
  clock: ManualClock
  /** Ticks until a pass claims nothing; returns how many passes claimed something. */
  drain: () => Promise<number>
  /** Every execution of the tree under `rootId`, by task id (oldest first). */
  tree: (rootId: string) => Promise<Execution[]>
}

/** A real SQLite file in a fresh temp dir, an engine on a ManualClock, cleaned up after the test. */
function setup(tasks: TaskMap, options: Partial<EngineOptions> & { clock?: Clock } = {}): Setup {
  const { engine, storage, clock } = openEngine(tasks, options)
  const drain = async () => {
    for (let passes = 0; ; passes++) {
      const { claimed } = await engine.executor.tick()
      if (claimed === 0) return passes
      if (passes > 100) throw new Error('the engine did not settle')
    }
  }
  const tree = async (rootId: string) =>
    Promise.all((await engine.list({ rootId, limit: 500 })).items.reverse().map((e) => engine.get(e.id)))
  return { engine, storage, clock, drain, tree }
}

/** The in-run events of an execution's history (steps, waits, signals, children), in order. */
async function runEvents(engine: Engine, id: string) {
  return (await engine.history(id)).items
    .filter((h) => h.event !== 'status')
    .map((h) => ({ event: h.event, name: h.name, status: (h.detail as { status?: string }).status }))
}

/** A task (no retries) whose first run fails and every later run returns 'fixed'. */
function failsOnce(id: string) {
  let runs = 0
  return task({
    id,
    input: z.null(),
    retry: { maxAttempts: 1 },
    run: () => {
      if (++runs === 1) throw new Error('first run fails')
      return 'fixed'
    },
  })
}

/**
 * Whether a history event is the later record of a wait that was already recorded (a sleep
 * found over, a child found finished): whether those are written again is an implementation
 * choice, so order checks skip them.
 */
function isRecheck(events: readonly { event: string; name: string | null }[], index: number): boolean {
  const e = events[index]!
  if (e.event !== 'wait' && e.event !== 'child') return false
  return events.slice(0, index).some((p) => p.event === e.event && p.name === e.name)
}

/** The execution's history as `→ status` and `event name` lines, rechecks of recorded waits left out. */
async function timeline(engine: Engine, id: string): Promise<string[]> {
  const history = (await engine.history(id)).items
  return history
    .filter((_h, i) => !isRecheck(history, i))
    .map((h) => (h.event === 'status' ? `→ ${h.to}` : `${h.event} ${h.name}`))
}

/** Ticks until a pass claims nothing. */
async function drainTicks(engine: Engine): Promise<void> {
  for (let i = 0; i < 100; i++) if ((await engine.executor.tick()).claimed === 0) return
  throw new Error('the engine did not settle')
}

const errorSummary = (error: unknown) => {
  const e = error as { name?: string; code?: string; message?: string }
  return { name: e.name, code: e.code, message: e.message }
}

// ── 1. steps ─────────────────────────────────────────────────────────────────────────

describe('steps', () => {
  it('a second attempt runs only the step that was not recorded; recorded values come from the record', async () => {
    const seenWhen: unknown[] = []
    const attempts: number[] = []
    const threeSteps = task({
      id: 'three-steps',
      input: z.object({ x: z.number() }),
      retry: { maxAttempts: 3, backoff: { initialMs: 1000 } },
      run: async ({ x }, ctx) => {
        hit('body')
        attempts.push(ctx.attempt)
        const a = await ctx.step('a', () => {
          hit('a')
          return x + 1
        })
        const when = await ctx.step('b', () => {
          hit('b')
          return new Date(T0 + 7)
        })
        seenWhen.push(when)
        return ctx.step('c', () => {
          if (hit('c') === 1) throw new Error('c failed once')
          return { a, when }
        })
      },
    })
    const { engine, clock } = setup({ threeSteps })
    const { execution } = await engine.enqueue(threeSteps, { x: 5 })

    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'queued',
      runs: 1,
      attempt: 2,
      failures: 1,
      runAt: T0 + 999,
      error: { name: 'Error', message: 'c failed once', retryable: true },
    })
    expect([hits('body'), hits('a'), hits('b'), hits('c')]).toEqual([1, 1, 1, 1])

    clock.advance(999)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      runs: 2,
      attempt: 2,
      failures: 1,
      error: null,
      output: { a: 6, when: '2030-01-01T00:00:00.007Z' },
    })
    // a and b ran once; c ran again because its failure (retryable) was not recorded.
    expect([hits('body'), hits('a'), hits('b'), hits('c')]).toEqual([2, 1, 1, 2])
    expect(attempts).toEqual([1, 2])
    // The first run already sees the JSON round trip a replay sees: a string, not a Date.
    expect(seenWhen).toEqual(['2030-01-01T00:00:00.007Z', '2030-01-01T00:00:00.007Z'])
    expect(await runEvents(engine, execution.id)).toEqual([
      { event: 'step', name: 'a', status: 'done' },
      { event: 'step', name: 'b', status: 'done' },
      { event: 'step', name: 'c', status: 'done' },
    ])
  })

  it('a TerminalError thrown by a step body is recorded and thrown again on replay without running it', async () => {
    const caught: unknown[] = []
    const charge = task({
      id: 'charge',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 10 } },
      run: async (_input, ctx) => {
        let outcome: unknown
        try {
          await ctx.step('charge-card', () => {
            hit('charge-card')
            throw new TerminalError('card declined', { code: 'CARD_DECLINED' })
          })
        } catch (error) {
          outcome = { ...errorSummary(error), isTerminal: error instanceof TerminalError }
          caught.push(outcome)
        }
        await ctx.step('notify', () => {
          if (hit('notify') === 1) throw new Error('mail server down')
        })
        return outcome
      },
    })
    const { engine, clock, drain } = setup({ charge })
    const { execution } = await engine.enqueue(charge, null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', failures: 1 })
    clock.advance(10)
    await drain()

    const expected = {
      name: 'TerminalError',
      code: 'CARD_DECLINED',
      message: 'card declined',
      isTerminal: true,
    }
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: expected })
    expect(hits('charge-card')).toBe(1)
    expect(hits('notify')).toBe(2)
    // The replay throws the same error (class, code, message) as the first run.
    expect(caught).toEqual([expected, expected])
    expect((await runEvents(engine, execution.id))[0]).toEqual({
      event: 'step',
      name: 'charge-card',
      status: 'failed',
    })
  })

  it('a name used twice fails the execution with DUPLICATE_STEP, without retrying', async () => {
    const twice = task({
      id: 'twice',
      input: z.null(),
      retry: { maxAttempts: 3 },
      run: async (_input, ctx) => {
        await ctx.step('same', () => hit('first'))
        await ctx.step('same', () => hit('second'))
        hit('after')
        return 'unreachable'
      },
    })
    const { engine, clock } = setup({ twice })
    const { execution } = await engine.enqueue(twice, null)
    await engine.executor.tick()
    const failed = await engine.get(execution.id)
    expect(failed).toMatchObject({
      status: 'failed',
      runs: 1,
      failures: 1,
      error: { name: 'DuplicateStepError', code: 'DUPLICATE_STEP', retryable: false },
    })
    expect(failed.error?.message).toContain('"same"')
    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect([hits('first'), hits('second'), hits('after')]).toEqual([1, 0, 0])
  })

  it('steps asked for in another order on replay fail with NON_DETERMINISTIC_REPLAY naming both', async () => {
    let codeChanged = false
    const reorder = task({
      id: 'reorder',
      input: z.null(),
      retry: { maxAttempts: 3, backoff: { initialMs: 10 } },
      run: async (_input, ctx) => {
        hit('body')
        const names = codeChanged ? ['ship', 'pack'] : ['pack', 'ship']
        for (const name of names) await ctx.step(name, () => hit(name))
        if (!codeChanged) {
          codeChanged = true // "deploy" a new version between the attempts
          throw new Error('crash after the steps')
        }
        return 'done'
      },
    })
    const { engine, clock } = setup({ reorder })
    const { execution } = await engine.enqueue(reorder, null)
    await engine.executor.tick()
    clock.advance(10)
    await engine.executor.tick()
    const failed = await engine.get(execution.id)
    expect(failed).toMatchObject({
      status: 'failed',
      runs: 2,
      failures: 2,
      error: { name: 'NonDeterminismError', code: 'NON_DETERMINISTIC_REPLAY', retryable: false },
    })
    expect(failed.error?.message).toBe(
      'non-deterministic replay: at position 0 the record has step "pack" but the run asked for step "ship"',
    )
    expect([hits('body'), hits('pack'), hits('ship')]).toEqual([2, 1, 1])
    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
  })

  it('a step asked for as another kind on replay is non-deterministic too', async () => {
    let codeChanged = false
    const kinds = task({
      id: 'kinds',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 10 } },
      run: async (_input, ctx) => {
        if (codeChanged) await ctx.sleep('pause', 1000)
        else await ctx.step('pause', () => hit('pause'))
        if (!codeChanged) {
          codeChanged = true
          throw new Error('crash')
        }
        return 'done'
      },
    })
    const { engine, clock } = setup({ kinds })
    const { execution } = await engine.enqueue(kinds, null)
    await engine.executor.tick()
    clock.advance(10)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: {
        code: 'NON_DETERMINISTIC_REPLAY',
        message: 'non-deterministic replay: "pause" was recorded as a step but the run asked for a sleep',
      },
    })
  })

  it('ctx.step with { retry } retries the body in-process, within one attempt', async () => {
    const flakyCall = task({
      id: 'flaky-call',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        hit('body')
        return ctx.step(
          'call',
          () => {
            const n = hit('call')
            if (n < 3) throw new Error(`try ${n} failed`)
            return n
          },
          { retry: { maxAttempts: 3, backoff: { initialMs: 100, factor: 1, maxMs: 100 } } },
        )
      },
    })
    const { engine, clock } = setup({ flakyCall })
    const { execution } = await engine.enqueue(flakyCall, null)
    let settled = false
    const ticking = engine.executor.tick().finally(() => (settled = true))
    // The back-off between tries is a timer on the engine's clock: move it until the step is done.
    while (!settled) {
      await turn()
      clock.advance(100)
    }
    await ticking
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 3,
      runs: 1,
      failures: 0,
    })
    expect([hits('body'), hits('call')]).toEqual([1, 3])
    expect(await runEvents(engine, execution.id)).toEqual([{ event: 'step', name: 'call', status: 'done' }])
  })

  it('a step whose in-process retries run out records its error and fails the execution without a retry', async () => {
    const hopeless = task({
      id: 'hopeless',
      input: z.null(),
      retry: { maxAttempts: 3, backoff: { initialMs: 10 } },
      run: async (_input, ctx) => {
        hit('body')
        return ctx.step(
          'call',
          () => {
            throw new Error(`try ${hit('call')} failed`)
          },
          { retry: { maxAttempts: 2, backoff: { initialMs: 100, factor: 1, maxMs: 100 } } },
        )
      },
    })
    const { engine, clock } = setup({ hopeless })
    const { execution } = await engine.enqueue(hopeless, null)
    let settled = false
    const ticking = engine.executor.tick().finally(() => (settled = true))
    while (!settled) {
      await turn()
      clock.advance(100)
    }
    await ticking
    // A retry of the attempt would only replay the recorded failure: the execution ends now.
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      runs: 1,
      failures: 1,
      error: { message: 'try 2 failed', retryable: false },
    })
    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect([hits('body'), hits('call')]).toEqual([1, 2])
  })

  it('a recorded step failure the run catches is replayed as the same error, fields and cause included', async () => {
    const seen: unknown[] = []
    const careful = task({
      id: 'careful',
      input: z.null(),
      run: async (_input, ctx) => {
        try {
          await ctx.step('charge', () => {
            throw new TerminalError('card declined', {
              code: 'DECLINED',
              cause: new TypeError('issuer said no'),
            })
          })
        } catch (error) {
          seen.push(error)
        }
        try {
          await ctx.step('validate', () => {
            throw new ValidationError('bad address', [{ path: ['zip'], message: 'expected 5 digits' }])
          })
        } catch (error) {
          seen.push(error)
        }
        await ctx.sleep('pause', MINUTE)
        return 'done'
      },
    })
    const { engine, clock, drain } = setup({ careful })
    const { execution } = await engine.enqueue(careful, null)
    await drain()
    clock.advance(MINUTE)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', runs: 2 })
    const [charge1, validate1, charge2, validate2] = seen as Error[]
    for (const [first, replayed] of [
      [charge1!, charge2!],
      [validate1!, validate2!],
    ] as const) {
      expect(replayed).not.toBe(first)
      expect(replayed.constructor).toBe(first.constructor)
      expect(serializeError(replayed)).toEqual(serializeError(first))
    }
    expect(charge2!.cause).toMatchObject({ name: 'TypeError', message: 'issuer said no' })
    expect((validate2 as ValidationError).issues).toEqual([{ path: ['zip'], message: 'expected 5 digits' }])
  })
})

// ── 2. sleep ─────────────────────────────────────────────────────────────────────────

describe('sleep', () => {
  it('ctx.sleep for 30 days parks holding no slot and completes as soon as the clock passes it', async () => {
    const monthly = task({
      id: 'monthly',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        hit('body')
        const started = await ctx.step('before', () => {
          hit('before')
          return ctx.executionId
        })
        await ctx.sleep('month', 30 * DAY)
        await ctx.step('after', () => hit('after'))
        return started
      },
    })
    const { engine, clock } = setup({ monthly })
    const { execution } = await engine.enqueue(monthly, null)

    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(engine.executor.activeAttempts).toBe(0)
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'waiting',
      runAt: T0 + 30 * DAY,
      runs: 1,
      failures: 0,
    })
    expect([hits('body'), hits('before'), hits('after')]).toEqual([1, 1, 0])

    clock.advance(30 * DAY - 1)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect((await engine.get(execution.id)).status).toBe('waiting')

    clock.advance(1)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: execution.id,
      runs: 2,
      failures: 0,
      finishedAt: T0 + 30 * DAY,
    })
    expect([hits('body'), hits('before'), hits('after')]).toEqual([2, 1, 1])
    expect(await timeline(engine, execution.id)).toEqual([
      '→ queued',
      '→ running',
      'step before',
      'wait month',
      '→ waiting',
      '→ queued',
      '→ running',
      'step after',
      '→ completed',
    ])
  })

  it('a wait whose record cannot be written does not park: the attempt fails and is retried', async () => {
    const napper = task({
      id: 'napper',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 10, factor: 1, maxMs: 10 } },
      run: async (_input, ctx) => {
        hit('body')
        await ctx.sleep('nap', 1000)
        return 'rested'
      },
    })
    const { engine, storage, clock } = setup({ napper })
    // The sleep's record is written behind the park: make its first write fail.
    const recordSteps = storage.recordSteps.bind(storage)
    let failed = 0
    storage.recordSteps = (writes, now) => {
      if (failed++ === 0) return Promise.reject(new Error('disk I/O error'))
      return recordSteps(writes, now)
    }
    const { execution } = await engine.enqueue(napper, null)

    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    // Not `waiting` for a sleep nobody recorded: a failed attempt, queued for its retry.
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', runs: 1, failures: 1 })
    expect((await engine.get(execution.id)).error).toMatchObject({ message: 'disk I/O error' })

    clock.advance(10)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 10 + 1000 })
    clock.advance(1000)
    await drainTicks(engine)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'rested' })
    expect(hits('body')).toBe(3)
  })

  it('ctx.sleepUntil waits for a date; one in the past does not park', async () => {
    const until = task({
      id: 'until',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('body')
        await ctx.sleepUntil('already', new Date(T0 - HOUR))
        await ctx.sleepUntil('alarm', new Date(T0 + 90 * MINUTE))
        await ctx.sleepUntil('alarm-again', T0 + 90 * MINUTE)
        return ctx.step('after', () => hit('after'))
      },
    })
    const { engine, clock } = setup({ until })
    const { execution } = await engine.enqueue(until, null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 90 * MINUTE })
    clock.set(T0 + 90 * MINUTE)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 1, runs: 2 })
    expect(hits('body')).toBe(2)
  })

  it('a started engine resumes a sleeper when the clock passes its wake time', async () => {
    const { engine, clock } = setup({
      napper: task({
        id: 'napper',
        input: z.null(),
        run: async (_input, ctx) => {
          hit('body')
          await ctx.sleep('nap', 30 * DAY)
          return 'rested'
        },
      }),
    })
    engine.start()
    const { execution } = await engine.enqueue('napper', null)
    await until(() => hits('body') === 1, 'the first run')
    const waiting = await engine.waitFor(execution.id, { timeoutMs: 0 })
    await until(() => engine.executor.activeAttempts === 0, 'the park')
    expect((await engine.get(execution.id)).status).toBe('waiting')
    expect(waiting.status).not.toBe('completed')

    const done = engine.waitFor(execution.id, { timeoutMs: 60 * DAY, pollMs: 60 * DAY })
    clock.advance(30 * DAY)
    expect(await done).toMatchObject({ status: 'completed', output: 'rested', runs: 2 })
    expect(hits('body')).toBe(2)
  })
})

describe('retry (the rerun transition)', () => {
  it('replays a failure the run caught; only the failure that ended it runs again', async () => {
    let lastWorks = false
    const branchy = task({
      id: 'branchy',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        const a = await ctx
          .step('a', () => {
            hit('a')
            if (!lastWorks) throw new TerminalError('a failed')
            return 'ok'
          })
          .catch(() => 'fallback')
        await ctx.step(a === 'fallback' ? 'compensate' : 'proceed', () => hit('second'))
        return ctx.step('last', () => {
          hit('last')
          if (!lastWorks) throw new TerminalError('last failed', { code: 'LAST' })
          return 'done'
        })
      },
    })
    const { engine } = setup({ branchy })
    const { execution } = await engine.enqueue(branchy, null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'failed', error: { code: 'LAST' } })
    lastWorks = true
    expect(await engine.retry(execution.id)).toMatchObject({ status: 'queued', failures: 0, error: null })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'done' })
    // `a` replayed its caught failure (the branch stayed "compensate"); only `last` ran again.
    expect([hits('a'), hits('second'), hits('last')]).toEqual([1, 1, 2])
  })

  it('retrying a parent reruns the children its end cancelled; a child that failed on its own is retried first', async () => {
    const flaky = failsOnce('flaky-child')
    const parent = task({
      id: 'all-or-nothing',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: (_input, ctx) => ctx.all([ctx.child('slow', blocker, null), ctx.child('flaky', flaky, null)]),
    })
    const { engine, drain, tree } = setup({ parent, flaky, blocker })
    const { execution } = await engine.enqueue(parent, null)
    await drain()
    const [, slow, flakyChild] = await tree(execution.id)
    expect([slow!.status, slow!.error?.code, flakyChild!.status]).toEqual([
      'cancelled',
      'PARENT_ENDED',
      'failed',
    ])

    await engine.retry(flakyChild!.id)
    await drain()
    expect((await engine.get(flakyChild!.id)).status).toBe('completed')
    await engine.retry(execution.id)
    // The blocker cancelled by the parent's end runs again (and waits); the parent with it.
    expect((await engine.get(slow!.id)).status).toBe('queued')
    await drain()
    expect((await engine.get(slow!.id)).status).toBe('waiting')
    await engine.signal(slow!.id, 'never', null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: ['unblocked', 'fixed'],
    })
    expect((await engine.history(slow!.id)).items.filter((h) => h.from === 'cancelled')).toMatchObject([
      { to: 'queued', detail: { transition: 'rerun', with: execution.id } },
    ])
  })

  it('retrying a cancelled tree runs the whole tree again', async () => {
    const middle = task({
      id: 'middle-r',
      input: z.null(),
      run: (_i, ctx) => ctx.child('leaf', blocker, null),
    })
    const root = task({ id: 'root-r', input: z.null(), run: (_i, ctx) => ctx.child('middle', middle, null) })
    const { engine, drain, tree } = setup({ root, middle, blocker })
    const { execution } = await engine.enqueue(root, null)
    await drain()
    await engine.cancel(execution.id)
    expect((await tree(execution.id)).map((e) => e.status)).toEqual(['cancelled', 'cancelled', 'cancelled'])
    await engine.retry(execution.id)
    await drain()
    const again = await tree(execution.id)
    expect(again.map((e) => e.status)).toEqual(['waiting', 'waiting', 'waiting'])
    await engine.signal(again[2]!.id, 'never', null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'unblocked' })
    expect(hits('blocker.after')).toBe(1)
  })

  it('an execution past its deadline cannot be retried', async () => {
    const slow = task({
      id: 'slow-deadline',
      input: z.null(),
      deadlineMs: 1000,
      run: () => new Promise<never>(() => {}),
    })
    const { engine, clock } = setup({ slow })
    const { execution } = await engine.enqueue(slow, null, { delayMs: 5000 })
    clock.advance(5000)
    await engine.executor.tick()
    expect((await engine.get(execution.id)).status).toBe('timed_out')
    await expect(engine.retry(execution.id)).rejects.toThrow(/past its deadline/)
    expect((await engine.get(execution.id)).status).toBe('timed_out')
  })
})

describe('write-behind and queued parks', () => {
  it('a failed write the run caught does not turn a later park into a failure', async () => {
    const holder = task({
      id: 'holder',
      input: z.null(),
      run: (_input, ctx) => ctx.waitForWakeup('hold', { key: 'shared-key' }),
    })
    const latecomer = task({
      id: 'latecomer',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        await ctx.waitForWakeup('try', { key: 'shared-key' }).catch((error: unknown) => {
          hit(error instanceof ConflictError ? 'conflict' : 'other')
        })
        await ctx.sleep('long', 60 * MINUTE)
        return 'slept'
      },
    })
    const { engine } = setup({ holder, latecomer })
    await engine.enqueue(holder, null)
    await engine.executor.tick()
    const { execution } = await engine.enqueue(latecomer, null)
    await engine.executor.tick()
    expect(hits('conflict')).toBe(1)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', failures: 0 })
  })

  it('a park queued behind a slow write keeps its lease: no recovery, no counted failure', async () => {
    const leaf = task({ id: 'leaf', input: z.null(), run: () => 'leaf' })
    const root = task({
      id: 'root',
      input: z.null(),
      retry: { maxAttempts: 3 },
      run: (_input, ctx) => ctx.child('leaf', leaf, null),
    })
    const { engine, storage, clock } = setup(
      { leaf, root },
      { leaseMs: 1000, heartbeatMs: 300, pollIntervalMs: 200, shortSleepMs: 0 },
    )
    const recordSteps = storage.recordSteps.bind(storage)
    let unblock: () => void = () => {}
    const blocked = new Promise<void>((resolve) => (unblock = resolve))
    let held = false
    storage.recordSteps = async (writes, now) => {
      if (!held && writes.some((w) => w.step.kind === 'child')) {
        held = true
        await blocked
      }
      return recordSteps(writes, now)
    }
    engine.start()
    const { execution } = await engine.enqueue(root, null)
    await until(() => held, 'the child write to be held')
    for (let i = 0; i < 10; i++) {
      clock.advance(300) // heartbeats and recovery polls run; 3 s > leaseMs
      await turn()
    }
    unblock()
    expect(await engine.waitFor(execution.id, { timeoutMs: DAY, pollMs: 1 })).toMatchObject({
      status: 'completed',
      output: 'leaf',
      failures: 0,
    })
    expect(engine.executor.activeAttempts).toBe(0)
  })
})

describe('short sleeps in memory (shortSleepMs)', () => {
  const pause = (ms: number, id = 'pause', timeoutMs = 60_000) =>
    task({
      id,
      input: z.null(),
      timeoutMs,
      run: async (_input, ctx) => {
        hit('body')
        await ctx.step('before', () => hit('before'))
        await ctx.sleep('pause', ms)
        await ctx.step('after', () => hit('after'))
        return 'done'
      },
    })

  it('a sleep no longer than shortSleepMs passes in memory: recorded, no park, no second attempt, no slot held', async () => {
    const other = task({ id: 'other', input: z.null(), run: () => hit('other') })
    const { engine, clock } = setup({ pause: pause(500), other }, { concurrency: 1, shortSleepMs: 500 })
    engine.start()
    const { execution } = await engine.enqueue('pause', null)
    await until(() => hits('before') === 1, 'the first step')
    await untilRecorded(engine, execution.id, 'pause')
    // Its one slot is free while it sleeps: another execution runs meanwhile.
    const { execution: second } = await engine.enqueue('other', null)
    expect(await engine.waitFor(second.id, { timeoutMs: DAY, pollMs: DAY })).toMatchObject({
      status: 'completed',
    })
    expect(await engine.get(execution.id)).toMatchObject({ status: 'running', runs: 1 })

    const done = engine.waitFor(execution.id, { timeoutMs: DAY, pollMs: DAY })
    clock.advance(500)
    expect(await done).toMatchObject({ status: 'completed', output: 'done', runs: 1 })
    expect([hits('body'), hits('before'), hits('after')]).toEqual([1, 1, 1])
    expect(await timeline(engine, execution.id)).toEqual([
      '→ queued',
      '→ running',
      'step before',
      'wait pause',
      'step after',
      '→ completed',
    ])
  })

  it('a longer sleep parks as usual', async () => {
    const { engine } = setup({ pause: pause(501) }, { shortSleepMs: 500 })
    engine.start()
    const { execution } = await engine.enqueue('pause', null)
    await until(() => hits('before') === 1, 'the first step')
    await until(() => engine.executor.activeAttempts === 0, 'the park')
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 501 })
  })

  it('a sleep that would end near the attempt timeout parks instead', async () => {
    const tight = pause(400, 'tight', 800)
    const { engine } = setup({ tight }, { shortSleepMs: 500 })
    engine.start()
    const { execution } = await engine.enqueue('tight', null)
    await until(() => hits('before') === 1, 'the first step')
    await until(() => engine.executor.activeAttempts === 0, 'the park')
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 400 })
  })

  it('cancelling an execution in an in-memory sleep ends it at once', async () => {
    const { engine, clock } = setup({ pause: pause(500) }, { shortSleepMs: 500 })
    engine.start()
    const { execution } = await engine.enqueue('pause', null)
    await until(() => hits('before') === 1, 'the first step')
    await untilRecorded(engine, execution.id, 'pause')
    expect(engine.executor.inMemorySleeps).toBe(1)
    await engine.cancel(execution.id)
    await until(() => engine.executor.activeAttempts === 0, 'the attempt to end')
    // The sleep itself ended with the attempt, before its time came.
    expect(engine.executor.inMemorySleeps).toBe(0)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'cancelled' })
    clock.advance(500)
    await turn()
    expect(hits('after')).toBe(0)
  })

  it('the attempt timeout restarts after an in-memory sleep, as it would for a new attempt', async () => {
    let finishWork: (() => void) | undefined
    const slow = task({
      id: 'slow',
      input: z.null(),
      timeoutMs: 2000,
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        await ctx.sleep('pause', 500)
        await ctx.step('work', () => new Promise<void>((resolve) => (finishWork = resolve)))
        return 'in time'
      },
    })
    const { engine, clock } = setup({ slow }, { shortSleepMs: 500 })
    engine.start()
    const { execution } = await engine.enqueue('slow', null)
    await untilRecorded(engine, execution.id, 'pause')
    clock.advance(500)
    await until(() => finishWork !== undefined, 'the step after the sleep')
    clock.advance(1600) // 2100 ms since the attempt started, 1600 since the sleep ended
    await turn()
    finishWork!()
    expect(await engine.waitFor(execution.id, { timeoutMs: DAY, pollMs: DAY })).toMatchObject({
      status: 'completed',
      output: 'in time',
      runs: 1,
    })
  })

  it('in-memory sleepers never run more code at once than concurrency allows', async () => {
    let running = 0
    let peak = 0
    const releases: (() => void)[] = []
    const napThenWork = task({
      id: 'nap-then-work',
      input: z.object({ i: z.number() }),
      run: async (_input, ctx) => {
        await ctx.sleep('nap', 100)
        await ctx.step('work', async () => {
          running++
          peak = Math.max(peak, running)
          await new Promise<void>((resolve) => releases.push(resolve))
          running--
        })
      },
    })
    const { engine, clock } = setup({ napThenWork }, { concurrency: 1, shortSleepMs: 500 })
    engine.start()
    const ids = await Promise.all(
      [0, 1, 2].map(async (i) => (await engine.enqueue('nap-then-work', { i })).execution.id),
    )
    // All three sleep at once: a sleeper holds no slot.
    await until(() => engine.executor.inMemorySleeps === 3, 'three sleepers')
    clock.advance(100)
    for (let done = 0; done < 3; done++) {
      await until(() => releases.length > 0, 'a step to run')
      expect(running).toBe(1)
      releases.shift()!()
    }
    for (const id of ids) {
      expect(await engine.waitFor(id, { timeoutMs: DAY, pollMs: DAY })).toMatchObject({ status: 'completed' })
    }
    expect(peak).toBe(1)
  })

  it('an in-memory sleep whose record cannot be written fails the attempt: nothing after it runs unrecorded', async () => {
    const { engine, storage, clock } = setup({ pause: pause(300) }, { shortSleepMs: 500 })
    const recordSteps = storage.recordSteps.bind(storage)
    let failedOnce = false
    storage.recordSteps = (writes, now) => {
      if (!failedOnce && writes.some((w) => w.step.name === 'pause')) {
        failedOnce = true
        return Promise.reject(new Error('disk I/O error'))
      }
      return recordSteps(writes, now)
    }
    engine.start()
    const { execution } = await engine.enqueue('pause', null)
    await until(() => failedOnce, 'the failed write')
    await until(() => engine.executor.activeAttempts === 0, 'the failed attempt to settle')
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', failures: 1 })
    expect(hits('after')).toBe(0)
    clock.advance(10_000) // past the retry's back-off
    await untilRecorded(engine, execution.id, 'pause')
    clock.advance(300)
    expect(await engine.waitFor(execution.id, { timeoutMs: DAY, pollMs: DAY })).toMatchObject({
      status: 'completed',
      failures: 1,
    })
    expect(hits('after')).toBe(1)
  })

  it('shortSleepMs: 0 parks every sleep', async () => {
    const { engine } = setup({ pause: pause(1) }, { shortSleepMs: 0 })
    engine.start()
    const { execution } = await engine.enqueue('pause', null)
    await until(() => hits('before') === 1, 'the first step')
    await until(() => engine.executor.activeAttempts === 0, 'the park')
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 1 })
  })
})

// ── 3. signals ───────────────────────────────────────────────────────────────────────

describe('signals', () => {
  const approval = task({
    id: 'approval',
    input: z.null(),
    run: async (_input, ctx) => {
      hit('body')
      await ctx.step('prepare', () => hit('prepare'))
      const decision = await ctx.waitForSignal<{ ok: boolean }>('approve')
      hit('decided')
      return decision
    },
  })

  it('a signal sent while the execution waits wakes it (waiting → queued) and it completes', async () => {
    const { engine } = setup({ approval })
    const { execution } = await engine.enqueue(approval, null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: WAIT_FOREVER })
    expect(engine.executor.activeAttempts).toBe(0)

    expect(await engine.signal(execution.id, 'approve', { ok: true })).toMatchObject({ status: 'queued' })
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: { ok: true } })
    expect([hits('body'), hits('prepare'), hits('decided')]).toEqual([2, 1, 1])
    const wake = (await engine.history(execution.id)).items.find(
      (h) => h.from === 'waiting' && h.to === 'queued',
    )
    expect(wake).toMatchObject({ to: 'queued', detail: { transition: 'wake', reason: 'signal approve' } })
  })

  it('a signal sent before the wait is kept in the inbox and taken by the wait', async () => {
    const coolOff = task({
      id: 'cool-off',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('body')
        await ctx.sleep('cool-off', MINUTE)
        return ctx.waitForSignal('approve')
      },
    })
    const { engine, clock } = setup({ coolOff })
    const { execution } = await engine.enqueue(coolOff, null)
    await engine.executor.tick()
    // The signal wakes the sleeper early; its sleep is not over, so it parks again.
    expect(await engine.signal(execution.id, 'approve', 'yes')).toMatchObject({ status: 'queued' })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + MINUTE })
    clock.advance(MINUTE)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'yes', runs: 3 })
    expect(hits('body')).toBe(3)
  })

  it('a signal sent before the execution first runs is kept for its wait', async () => {
    const { engine } = setup({ approval })
    const { execution } = await engine.enqueue(approval, null)
    expect(await engine.signal(execution.id, 'approve', { ok: false })).toMatchObject({ status: 'queued' })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: { ok: false } })
    expect(hits('body')).toBe(1)
  })

  it('a signal of another name does not satisfy the wait: the execution parks again', async () => {
    const { engine } = setup({ approval })
    const { execution } = await engine.enqueue(approval, null)
    await engine.executor.tick()
    await engine.signal(execution.id, 'reject', { ok: false })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: WAIT_FOREVER })
    await engine.signal(execution.id, 'approve', { ok: true })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: { ok: true } })
  })

  it('`where` takes the first matching signal and leaves the others for later waits', async () => {
    type Order = { kind: 'a' | 'b'; n: number }
    const orders = task({
      id: 'orders',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('body')
        const firstB = await ctx.waitForSignal<Order>('first-b', {
          signal: 'order',
          where: (o) => o.kind === 'b',
        })
        const secondB = await ctx.waitForSignal<Order>('second-b', {
          signal: 'order',
          where: (o) => o.kind === 'b',
        })
        const any = await ctx.waitForSignal<Order>('any', { signal: 'order' })
        return [firstB.n, secondB.n, any.n]
      },
    })
    const { engine } = setup({ orders })
    const { execution } = await engine.enqueue(orders, null)
    await engine.executor.tick()
    await engine.signal(execution.id, 'order', { kind: 'a', n: 1 })
    await engine.signal(execution.id, 'order', { kind: 'b', n: 2 })
    await engine.signal(execution.id, 'order', { kind: 'b', n: 3 })
    await engine.signal(execution.id, 'order', { kind: 'a', n: 4 })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: [2, 3, 1] })
    expect(hits('body')).toBe(2)
  })

  it('`where` with no match yet parks; a later matching signal is taken', async () => {
    const picky = task({
      id: 'picky',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('body')
        const first = await ctx.waitForSignal<number>('big', { signal: 'n', where: (n) => n > 10 })
        const next = await ctx.waitForSignal<number>('next', { signal: 'n' })
        return [first, next]
      },
    })
    const { engine } = setup({ picky })
    const { execution } = await engine.enqueue(picky, null)
    await engine.executor.tick()
    await engine.signal(execution.id, 'n', 5)
    await engine.executor.tick()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    await engine.signal(execution.id, 'n', 50)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: [50, 5] })
  })

  it('two waits in parallel, one with an async schema: a signal the first lets go of is taken by the second', async () => {
    // A Standard Schema whose check is async, as a remote or database-backed validator is.
    const asyncEvent = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) => {
          await new Promise((r) => setImmediate(r))
          return { value: value as { kind: string } }
        },
      },
    }
    const sorter = task({
      id: 'sorter',
      input: z.null(),
      run: async (_input, ctx) => {
        const [a, b] = await ctx.all([
          ctx.waitForSignal('a', { signal: 'event', schema: asyncEvent, where: (e) => e.kind === 'a' }),
          ctx.waitForSignal<{ kind: string }>('b', { signal: 'event', where: (e) => e.kind === 'b' }),
        ])
        return [a.kind, b.kind]
      },
    })
    const { engine, drain } = setup({ sorter })
    const { execution } = await engine.enqueue(sorter, null)
    await engine.signal(execution.id, 'event', { kind: 'b' })
    await drain()
    // "b" took the signal "a" checked first and let go of; "a" waits for its own.
    const taken = (await runEvents(engine, execution.id)).filter((e) => e.status === 'done')
    expect(taken).toEqual([{ event: 'signal', name: 'b', status: 'done' }])
    await engine.signal(execution.id, 'event', { kind: 'a' })
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: ['a', 'b'] })
  })

  it('timeoutMs fails the wait with a WaitTimeoutError the run can catch, on every replay', async () => {
    const caught: unknown[] = []
    const impatient = task({
      id: 'impatient',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        hit('body')
        let result: string
        try {
          await ctx.waitForSignal('approve', { timeoutMs: 10 * MINUTE })
          result = 'approved'
        } catch (error) {
          caught.push({ ...errorSummary(error), isWaitTimeout: error instanceof WaitTimeoutError })
          if (!(error instanceof WaitTimeoutError)) throw error
          result = 'timed out'
        }
        // Parks again after the catch: the next attempt replays the timed-out wait.
        await ctx.sleep('grace', MINUTE)
        return result
      },
    })
    const { engine, clock } = setup({ impatient })
    const { execution } = await engine.enqueue(impatient, null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 10 * MINUTE })
    clock.advance(10 * MINUTE - 1)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    clock.advance(1)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + 11 * MINUTE })
    clock.advance(MINUTE)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'timed out' })
    const expected = {
      name: 'WaitTimeoutError',
      code: 'WAIT_TIMEOUT',
      message: 'wait "approve" for signal "approve" timed out',
      isWaitTimeout: true,
    }
    expect(caught).toEqual([expected, expected])
    expect(hits('body')).toBe(3)
  })

  it('a signal that arrives before the timeout wins', async () => {
    const impatient = task({
      id: 'impatient',
      input: z.null(),
      run: async (_input, ctx) => {
        try {
          return await ctx.waitForSignal('approve', { timeoutMs: 10 * MINUTE })
        } catch (error) {
          if (error instanceof WaitTimeoutError) return 'timed out'
          throw error
        }
      },
    })
    const { engine, clock } = setup({ impatient })
    const { execution } = await engine.enqueue(impatient, null)
    await engine.executor.tick()
    clock.advance(5 * MINUTE)
    await engine.signal(execution.id, 'approve', 'in time')
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'in time' })
  })

  it('a payload that does not match the schema fails the wait with INVALID_SIGNAL', async () => {
    const payment = task({
      id: 'payment',
      input: z.null(),
      retry: { maxAttempts: 3 },
      run: async (_input, ctx) => {
        hit('body')
        const paid = await ctx.waitForSignal('paid', { schema: z.object({ amount: z.number() }) })
        return paid.amount
      },
    })
    const { engine } = setup({ payment })
    const { execution } = await engine.enqueue(payment, null)
    await engine.executor.tick()
    await engine.signal(execution.id, 'paid', { amount: 'ten' })
    await engine.executor.tick()
    const failed = await engine.get(execution.id)
    expect(failed).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { name: 'ValidationError', code: 'INVALID_SIGNAL', retryable: false },
    })
    expect(failed.error?.message).toMatch(/^signal "paid" does not match the schema of wait "paid": amount: /)
    expect(hits('body')).toBe(2)
    await expect(engine.signal(execution.id, 'paid', { amount: 10 })).rejects.toBeInstanceOf(ConflictError)
  })

  it('a payload that matches the schema is parsed by it', async () => {
    const payment = task({
      id: 'payment',
      input: z.null(),
      run: async (_input, ctx) => {
        const paid = await ctx.waitForSignal('paid', { schema: z.object({ amount: z.coerce.number() }) })
        return paid.amount + 1
      },
    })
    const { engine } = setup({ payment })
    const { execution } = await engine.enqueue(payment, null)
    await engine.executor.tick()
    await engine.signal(execution.id, 'paid', { amount: '41' })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 42 })
  })

  it('signalling a finished execution is a CONFLICT, an unknown one NOT_FOUND', async () => {
    const { engine } = setup({ approval })
    const { execution } = await engine.enqueue(approval, null)
    await engine.executor.tick()
    await engine.signal(execution.id, 'approve', { ok: true })
    await engine.executor.tick()
    expect((await engine.get(execution.id)).status).toBe('completed')
    await expect(engine.signal(execution.id, 'approve', { ok: true })).rejects.toBeInstanceOf(ConflictError)
    await expect(
      engine.signal('0190a5f2-7c1e-7000-8000-000000000000', 'approve', null),
    ).rejects.toBeInstanceOf(NotFoundError)
    await expect(engine.signal('not-an-id', 'approve', null)).rejects.toBeInstanceOf(NotFoundError)
  })
})

// ── 4. children ──────────────────────────────────────────────────────────────────────

const double = task({
  id: 'double',
  input: z.object({ n: z.number() }),
  run: async ({ n }, ctx) => {
    hit(`double(${n})`)
    return ctx.step('compute', () => n * 2)
  },
})

const broken = task({
  id: 'broken',
  input: z.null(),
  retry: { maxAttempts: 3 },
  run: () => {
    hit('broken')
    throw new TerminalError('the child broke', { code: 'CHILD_BROKE' })
  },
})

/** Waits for a signal that never comes. */
const blocker = task({
  id: 'blocker',
  input: z.null(),
  run: async (_input, ctx) => {
    hit('blocker')
    await ctx.waitForSignal('never')
    hit('blocker.after')
    return 'unblocked'
  },
})

describe('children', () => {
  it('ctx.child starts the child once; the parent waits and resumes with its output', async () => {
    const parent = task({
      id: 'parent',
      input: z.object({ n: z.number() }),
      run: async ({ n }, ctx) => {
        hit('parent')
        const doubled = await ctx.child('kid', double, { n })
        hit('parent.after')
        return { doubled }
      },
    })
    const { engine } = setup({ parent, double })
    const { execution } = await engine.enqueue(parent, { n: 21 })

    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: WAIT_FOREVER })
    const children = (await engine.list({ parentId: execution.id })).items
    expect(children).toHaveLength(1)
    const kid = await engine.get(children[0]!.id) // a list has no inputs
    expect(kid).toMatchObject({
      taskId: 'double',
      status: 'queued',
      input: { n: 21 },
      parentId: execution.id,
      rootId: execution.id,
    })

    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(kid.id)).toMatchObject({ status: 'completed', output: 42 })
    // The child's end woke the parent.
    expect((await engine.get(execution.id)).status).toBe('queued')

    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: { doubled: 42 },
      runs: 2,
    })
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect([hits('parent'), hits('parent.after'), hits('double(21)')]).toEqual([2, 1, 1])
    expect((await engine.list({ parentId: execution.id })).items.map((e) => e.id)).toEqual([kid.id])
    expect((await engine.list({ taskId: 'double' })).items).toHaveLength(1)
  })

  it('a failing child rejects ctx.child with its code; allSettled reports it beside the other value', async () => {
    const fanOut = task({
      id: 'fan-out',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('fan-out')
        const settled = await ctx.allSettled([
          ctx.child('good', double, { n: 4 }),
          ctx.child('bad', broken, null),
        ])
        let direct: unknown
        try {
          await ctx.child('bad-again', broken, null)
        } catch (error) {
          direct = {
            ...errorSummary(error),
            isChildError: error instanceof ChildExecutionError,
            childStatus: (error as ChildExecutionError).childStatus,
            childCode: (error as ChildExecutionError).childError?.code,
          }
        }
        return {
          settled: settled.map((r) =>
            r.status === 'fulfilled' ? { value: r.value } : { reason: errorSummary(r.reason) },
          ),
          direct,
        }
      },
    })
    const { engine, drain } = setup({ fanOut, double, broken })
    const { execution } = await engine.enqueue(fanOut, null)
    await drain()
    const done = await engine.get(execution.id)
    expect(done.status).toBe('completed')
    const output = done.output as { settled: unknown[]; direct: unknown }
    expect(output.settled).toEqual([
      { value: 8 },
      {
        reason: {
          name: 'ChildExecutionError',
          code: 'CHILD_BROKE',
          message: expect.stringMatching(/^child execution \S+ ended failed: the child broke$/) as string,
        },
      },
    ])
    expect(output.direct).toMatchObject({
      name: 'ChildExecutionError',
      code: 'CHILD_BROKE',
      isChildError: true,
      childStatus: 'failed',
      childCode: 'CHILD_BROKE',
    })
    // A TerminalError in the child is not retried; each child ran once.
    expect([hits('double(4)'), hits('broken')]).toEqual([1, 2])
    const kids = await engine.list({ parentId: execution.id })
    expect(kids.items.map((k) => [k.taskId, k.status]).sort()).toEqual([
      ['broken', 'failed'],
      ['broken', 'failed'],
      ['double', 'completed'],
    ])
  })

  it('an uncaught child failure fails the parent with the child error', async () => {
    const careless = task({
      id: 'careless',
      input: z.null(),
      retry: { maxAttempts: 3 },
      run: async (_input, ctx) => ctx.child('bad', broken, null),
    })
    const { engine, drain } = setup({ careless, broken })
    const { execution } = await engine.enqueue(careless, null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { name: 'ChildExecutionError', code: 'CHILD_BROKE', retryable: false },
    })
  })

  it('ctx.all over 3 children starts all of them before parking', async () => {
    const sumOfDoubles = task({
      id: 'sum-of-doubles',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('parent')
        const values = await ctx.all([
          ctx.child('one', double, { n: 1 }),
          ctx.child('two', double, { n: 2 }),
          ctx.child('three', double, { n: 3 }),
        ])
        return values.reduce((a, b) => a + b, 0)
      },
    })
    const { engine } = setup({ sumOfDoubles, double })
    const { execution } = await engine.enqueue(sumOfDoubles, null)
    await engine.executor.tick()
    expect((await engine.list({ parentId: execution.id, status: 'queued' })).items).toHaveLength(3)
    // All three children run in one pass; the parent, woken, in the next.
    expect(await engine.executor.tick()).toEqual({ claimed: 3 })
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 12, runs: 2 })
    expect([hits('parent'), hits('double(1)'), hits('double(2)'), hits('double(3)')]).toEqual([2, 1, 1, 1])
  })

  it('a parent woken by one child parks again until the others are done', async () => {
    const pair = task({
      id: 'pair',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('pair')
        const [fast, slow] = await ctx.all([
          ctx.child('fast', double, { n: 1 }),
          ctx.child('slow', double, { n: 2 }, { delayMs: HOUR }),
        ])
        return fast + slow
      },
    })
    const { engine, clock, drain } = setup({ pair, double })
    const { execution } = await engine.enqueue(pair, null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runs: 2 })
    clock.advance(HOUR)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 6, runs: 3 })
    expect([hits('pair'), hits('double(1)'), hits('double(2)')]).toEqual([3, 1, 1])
  })

  it('ctx.spawn returns the child id and the parent completes without waiting for it', async () => {
    const fireAndForget = task({
      id: 'fire-and-forget',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('parent')
        const { executionId } = await ctx.spawn('background', double, { n: 5 })
        return executionId
      },
    })
    const { engine } = setup({ fireAndForget, double })
    const { execution } = await engine.enqueue(fireAndForget, null)
    await engine.executor.tick()
    const done = await engine.get(execution.id)
    expect(done.status).toBe('completed')
    const childId = done.output as string
    expect(await engine.get(childId)).toMatchObject({
      status: 'queued',
      parentId: execution.id,
      rootId: execution.id,
      input: { n: 5 },
    })
    await engine.executor.tick()
    expect(await engine.get(childId)).toMatchObject({ status: 'completed', output: 10 })
    // The spawned child's end does not touch the finished parent.
    expect(await engine.get(execution.id)).toEqual(done)
    expect(hits('parent')).toBe(1)
  })

  it('a spawned child outlives a parent that parks, and is started once', async () => {
    const spawner = task({
      id: 'spawner',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('spawner')
        const { executionId } = await ctx.spawn('background', blocker, null)
        await ctx.sleep('nap', MINUTE)
        return executionId
      },
    })
    const { engine, clock, drain } = setup({ spawner, blocker })
    const { execution } = await engine.enqueue(spawner, null)
    await drain()
    // The spawned child waits; the parent's sleep is not woken by it.
    expect((await engine.get(execution.id)).status).toBe('waiting')
    clock.advance(MINUTE)
    await drain()
    const done = await engine.get(execution.id)
    expect(done.status).toBe('completed')
    expect((await engine.list({ parentId: execution.id })).items.map((e) => e.id)).toEqual([done.output])
    expect(await engine.get(done.output as string)).toMatchObject({ status: 'waiting' })
    expect([hits('spawner'), hits('blocker')]).toEqual([2, 1])
  })

  it('recursion 5 levels deep sums through ctx.child; list({ rootId }) returns the whole tree', async () => {
    const sum = task({
      id: 'sum',
      input: z.object({ depth: z.number().int().min(0) }),
      run: async ({ depth }, ctx): Promise<number> => {
        hit(`sum(${depth})`)
        if (depth === 0) return 0
        const below = await ctx.child<number>('below', 'sum', { depth: depth - 1 })
        return depth + below
      },
    })
    const { engine, drain, tree } = setup({ sum })
    const { execution: root } = await engine.enqueue(sum, { depth: 5 })
    await drain()
    expect(await engine.get(root.id)).toMatchObject({ status: 'completed', output: 15 })

    const all = await tree(root.id)
    expect(all).toHaveLength(6)
    expect(all.map((e) => e.input)).toEqual([0, 1, 2, 3, 4, 5].reverse().map((depth) => ({ depth })))
    expect(all.every((e) => e.rootId === root.id && e.status === 'completed')).toBe(true)
    expect(all.map((e) => e.parentId)).toEqual([null, ...all.slice(0, -1).map((e) => e.id)])
    expect(all.map((e) => e.output)).toEqual([15, 10, 6, 3, 1, 0])
    // Every level but the leaf ran twice (before and after its child), each child was made once.
    expect([5, 4, 3, 2, 1, 0].map((d) => hits(`sum(${d})`))).toEqual([2, 2, 2, 2, 2, 1])
    // A subtree's list by rootId is the root's tree: children carry the top id, not their parent's.
    expect((await engine.list({ rootId: all[2]!.id })).items.map((e) => e.id)).toEqual([all[2]!.id])
  })
})

describe('a parent keeps what it consumed from a child', () => {
  /** The README's placeOrder: reserve, charge (a declined card), compensate with release, fail. */
  function orderTasks() {
    let declined = true
    const reserve = task({ id: 'reserve', input: z.null(), run: () => (hit('reserve'), 'reserved') })
    const release = task({ id: 'release', input: z.null(), run: () => (hit('release'), 'released') })
    const charge = task({
      id: 'charge',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: () => {
        hit('charge')
        if (declined) throw new TerminalError('the card was declined', { code: 'CARD_DECLINED' })
        return { chargeId: 'ch_1' }
      },
    })
    const placeOrder = task({
      id: 'place-order',
      input: z.null(),
      retry: { maxAttempts: 3 },
      run: async (_input, ctx) => {
        await ctx.child('reserve', reserve, null)
        let chargeId: string
        try {
          ;({ chargeId } = await ctx.child('charge', charge, null))
        } catch (error) {
          await ctx.child('release', release, null)
          throw new TerminalError('the payment failed; the stock was released', {
            code: 'PAYMENT_FAILED',
            cause: error,
          })
        }
        await ctx.child('receipt', reserve, null)
        return { chargeId }
      },
    })
    return { tasks: { reserve, release, charge, placeOrder }, approve: () => (declined = false) }
  }

  it('retrying the failed charge, then the order: the order replays its compensation as it ran, no NON_DETERMINISTIC_REPLAY', async () => {
    const { tasks, approve } = orderTasks()
    const { engine, drain, tree } = setup(tasks)
    const { execution } = await engine.enqueue(tasks.placeOrder, null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: { code: 'PAYMENT_FAILED' },
    })
    const chargeChild = (await tree(execution.id)).find((e) => e.taskId === 'charge')!
    expect(chargeChild.status).toBe('failed')

    // The card is fixed and the charge retried: it completes.
    approve()
    await engine.retry(chargeChild.id)
    await drain()
    expect((await engine.get(chargeChild.id)).status).toBe('completed')
    // Then the order: its run caught the charge's failure and compensated, so that is what it
    // replays (a handled failure replays as it was), whatever the charge's row says now.
    await engine.retry(execution.id)
    await drain()
    const again = await engine.get(execution.id)
    expect(again.error?.code).not.toBe('NON_DETERMINISTIC_REPLAY')
    expect(again).toMatchObject({ status: 'failed', error: { code: 'PAYMENT_FAILED' } })
    // Nothing ran twice: no second reservation, no second release, no receipt.
    expect([hits('reserve'), hits('release'), hits('charge')]).toEqual([1, 1, 2])
    expect((await tree(execution.id)).map((e) => e.taskId)).toEqual([
      'place-order',
      'reserve',
      'charge',
      'release',
    ])
  })

  it("replays from the parent's own record: a finished child's row deleted after it was consumed changes nothing", async () => {
    const caught: unknown[] = []
    const parent = task({
      id: 'keeper',
      input: z.null(),
      run: async (_input, ctx) => {
        const doubled = await ctx.child('kid', double, { n: 21 })
        try {
          await ctx.child('bad', broken, null)
        } catch (error) {
          caught.push({ ...errorSummary(error), childStatus: (error as ChildExecutionError).childStatus })
        }
        await ctx.sleep('after', HOUR)
        return doubled
      },
    })
    const { engine, storage, clock, drain, tree } = setup({ parent, double, broken })
    const { execution } = await engine.enqueue(parent, null)
    await drain()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    // The parent consumed both children (it is in its sleep now): what it saw is in its record.
    const { steps } = await storage.loadRunState(execution.id)
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['kid', 'done'],
      ['bad', 'failed'],
      ['after', 'waiting'],
    ])
    // Retention (or anyone) deletes the finished children.
    const children = (await tree(execution.id)).filter((e) => e.id !== execution.id)
    expect(children.map((c) => c.status)).toEqual(['completed', 'failed'])
    const remove = storage.db.$client.prepare('DELETE FROM executions WHERE id = ?')
    for (const child of children) remove.run(child.id)

    clock.advance(HOUR)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 42 })
    // The replay threw the same ChildExecutionError it threw the first time.
    expect(caught).toHaveLength(2)
    expect(caught[1]).toEqual(caught[0])
    expect(caught[0]).toMatchObject({
      name: 'ChildExecutionError',
      code: 'CHILD_BROKE',
      childStatus: 'failed',
    })
  })

  it("the child's end is recorded in the parent's record by the child's own settlement, before the parent runs", async () => {
    const parent = task({
      id: 'awaits-one',
      input: z.null(),
      run: async (_input, ctx) => ctx.child('kid', double, { n: 4 }),
    })
    const { engine, storage } = setup({ parent, double })
    const { execution } = await engine.enqueue(parent, null)
    await engine.executor.tick() // the parent starts its child and parks
    await engine.executor.tick() // the child completes and wakes the parent
    expect((await engine.get(execution.id)).status).toBe('queued')
    const { steps, children } = await storage.loadRunState(execution.id)
    expect(steps.map((s) => [s.name, s.status, s.value])).toEqual([['kid', 'done', '8']])
    expect(children).toEqual([])
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 8 })
  })

  it('a parent resumed by another process (which did not start the child) records the outcome itself when its run sees it', async () => {
    const parent = task({
      id: 'restarted-parent',
      input: z.null(),
      run: async (_input, ctx) => {
        const doubled = await ctx.child('kid', double, { n: 5 })
        try {
          await ctx.child('bad', broken, null)
        } catch {
          // handled: the replay must see the same failure
        }
        await ctx.sleep('after', HOUR)
        return doubled
      },
    })
    const first = setup({ parent, double, broken })
    const { execution } = await first.engine.enqueue(parent, null)
    await first.engine.executor.tick() // starts both children, parks
    // Another process on the same file (a restart): it never saw the children started.
    const second = {
      engine: new Engine({ storage: first.storage, tasks: { parent, double, broken }, clock: first.clock }),
    }
    onTestFinished(() => second.engine.stop({ drainMs: 0 }))
    for (let i = 0; i < 10 && (await second.engine.executor.tick()).claimed > 0; i++);
    expect((await second.engine.get(execution.id)).status).toBe('waiting')
    const { steps } = await first.storage.loadRunState(execution.id)
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['kid', 'done'],
      ['bad', 'failed'],
      ['after', 'waiting'],
    ])
    // The parent's run wrote those (no history row: the children's own histories have their ends).
    expect(
      (await second.engine.history(execution.id)).items.filter((h) => h.event === 'child').map((h) => h.name),
    ).toEqual(['kid', 'bad'])
    const remove = first.storage.db.$client.prepare('DELETE FROM executions WHERE parent_id = ?')
    remove.run(execution.id)
    first.clock.advance(HOUR)
    await second.engine.executor.tick()
    expect(await second.engine.get(execution.id)).toMatchObject({ status: 'completed', output: 10 })
  })

  it("a child retried while its parent's run is about to consume its earlier end: the parent keeps what it consumed", async () => {
    // The parent loads its record when its run starts, then does work outside a step before it
    // reaches the child: meanwhile the child, cancelled, is retried and completes.
    let hold = false
    let resume!: () => void
    const pause = new Promise<void>((resolve) => (resume = resolve))
    const kid = task({ id: 'kid', input: z.null(), run: () => 'kid done' })
    const parent = task({
      id: 'slow-parent',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.step('first', () => hit('first'))
        if (hold) await pause
        let branch: string
        try {
          await ctx.child('kid', kid, null)
          branch = await ctx.step('ship', () => 'shipped')
        } catch {
          branch = await ctx.step('compensate', () => 'compensated')
        }
        await ctx.sleep('nap', HOUR)
        return branch
      },
    })
    const { engine, clock, tree } = setup({ parent, kid })
    const { execution } = await engine.enqueue(parent, null)
    await engine.executor.tick() // records "first", starts the kid, parks
    const kidId = (await tree(execution.id)).find((e) => e.taskId === 'kid')!.id
    await engine.cancel(kidId) // the kid ends (cancelled) and wakes the parent

    hold = true
    const parentRun = engine.executor.tick() // the parent's run loads its record: the kid cancelled
    await until(() => hits('first') === 1 && engine.executor.activeAttempts === 1, 'the parent run')
    await engine.retry(kidId)
    expect((await engine.executor.tick()).claimed).toBe(1) // the kid runs again and completes
    expect((await engine.get(kidId)).status).toBe('completed')
    resume()
    await parentRun
    for (let i = 0; i < 5; i++) await engine.executor.tick()
    // Whatever the kid became, the parent's record holds what its run consumed (the cancel),
    // and every replay follows the branch that run took.
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', failures: 0 })
    clock.advance(HOUR)
    await drainTicks(engine)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'compensated' })
  })

  it('retrying a parent forgets the recorded failure that ended it, wherever it sits: not only the last record', async () => {
    let aWorks = false
    const parallel = task({
      id: 'parallel-steps',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) =>
        ctx.all([
          ctx.step('a', async () => {
            hit('a')
            await turn() // ends after b: b holds the last position
            if (!aWorks) throw new TerminalError('a failed', { code: 'A_FAILED' })
            return 'a'
          }),
          ctx.step('b', () => (hit('b'), 'b')),
        ]),
    })
    const { engine, drain } = setup({ parallel })
    const { execution } = await engine.enqueue(parallel, null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'failed', error: { code: 'A_FAILED' } })
    aWorks = true
    await engine.retry(execution.id)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: ['a', 'b'] })
    expect([hits('a'), hits('b')]).toEqual([2, 1])
    expect(
      (await engine.history(execution.id)).items.find((h) => h.to === 'queued' && h.from === 'failed'),
    ).toMatchObject({ detail: { transition: 'rerun', forgotten: { position: 0, name: 'a' } } })
  })

  it('retrying the failed child, then the parent, resumes the tree: the parent reads that child afresh', async () => {
    const flaky = failsOnce('flaky-first')
    const parent = task({
      id: 'flaky-then-slow',
      input: z.null(),
      retry: { maxAttempts: 1 },
      // The failing child first: the blocker's record comes after it.
      run: (_input, ctx) => ctx.all([ctx.child('flaky', flaky, null), ctx.child('slow', blocker, null)]),
    })
    const { engine, drain, tree } = setup({ parent, flaky, blocker })
    const { execution } = await engine.enqueue(parent, null)
    await drain()
    const [, flakyChild, slow] = await tree(execution.id)
    expect([flakyChild!.status, slow!.status, slow!.error?.code]).toEqual([
      'failed',
      'cancelled',
      'PARENT_ENDED',
    ])

    await engine.retry(flakyChild!.id)
    await drain()
    await engine.retry(execution.id)
    await drain()
    expect((await engine.get(slow!.id)).status).toBe('waiting')
    await engine.signal(slow!.id, 'never', null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: ['fixed', 'unblocked'],
    })
    // Still one child per name: the record kept the child's id, no second child was started.
    expect((await tree(execution.id)).length).toBe(3)
  })
})

// ── 5. cancellation of a subtree ─────────────────────────────────────────────────────

describe('cancellation', () => {
  it('cancelling a parent waiting on children cancels it and every unfinished descendant', async () => {
    const middle = task({
      id: 'middle',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('middle')
        return ctx.child('grandchild', blocker, null)
      },
    })
    const quick = task({ id: 'quick', input: z.null(), run: () => 'quick' })
    const root = task({
      id: 'root',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('root')
        await ctx.all([
          ctx.child('blocked', blocker, null),
          ctx.child('middle', middle, null),
          ctx.child('quick', quick, null),
        ])
        hit('root.after')
        return 'done'
      },
    })
    const { engine, clock, drain, tree } = setup({ root, middle, quick, blocker })
    const { execution } = await engine.enqueue(root, null)
    await drain()
    const before = await tree(execution.id)
    expect(before.map((e) => [e.taskId, e.status])).toEqual([
      ['root', 'waiting'],
      ['blocker', 'waiting'],
      ['middle', 'waiting'],
      ['quick', 'completed'],
      ['blocker', 'waiting'],
    ])
    expect(engine.executor.activeAttempts).toBe(0)

    clock.advance(5)
    const cancelled = await engine.cancel(execution.id)
    expect(cancelled).toMatchObject({ status: 'cancelled', finishedAt: T0 + 5, error: { code: 'CANCELLED' } })
    const after = await tree(execution.id)
    expect(after.map((e) => [e.taskId, e.status])).toEqual([
      ['root', 'cancelled'],
      ['blocker', 'cancelled'],
      ['middle', 'cancelled'],
      ['quick', 'completed'],
      ['blocker', 'cancelled'],
    ])
    // The one cancelled says so; those below it were cancelled because of it.
    for (const e of after.filter((x) => x.status === 'cancelled'))
      expect(e).toMatchObject({
        finishedAt: T0 + 5,
        error: { code: e.id === execution.id ? 'CANCELLED' : 'PARENT_ENDED' },
      })

    clock.advance(DAY)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect([
      hits('root'),
      hits('root.after'),
      hits('middle'),
      hits('blocker'),
      hits('blocker.after'),
    ]).toEqual([2, 0, 1, 2, 0])
    // Nothing in a cancelled tree takes signals.
    await expect(engine.signal(after[1]!.id, 'never', null)).rejects.toBeInstanceOf(ConflictError)
  })

  it('cancelling during a sleep: the execution never resumes', async () => {
    const sleeper = task({
      id: 'sleeper',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.sleep('nap', HOUR)
        hit('after')
        return 'woke'
      },
    })
    const { engine, clock } = setup({ sleeper })
    const { execution } = await engine.enqueue(sleeper, null)
    await engine.executor.tick()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    expect(await engine.cancel(execution.id)).toMatchObject({ status: 'cancelled' })
    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(hits('after')).toBe(0)
    expect((await engine.history(execution.id)).items.map((h) => [h.from, h.to]).slice(-1)).toEqual([
      ['waiting', 'cancelled'],
    ])
  })

  it('cancelling during a signal wait: later signals are a CONFLICT', async () => {
    const { engine } = setup({ blocker })
    const { execution } = await engine.enqueue(blocker, null)
    await engine.executor.tick()
    expect(await engine.cancel(execution.id)).toMatchObject({ status: 'cancelled' })
    await expect(engine.signal(execution.id, 'never', null)).rejects.toBeInstanceOf(ConflictError)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect([hits('blocker'), hits('blocker.after')]).toEqual([1, 0])
  })

  it('cancelling a child wakes its waiting parent, whose ctx.child rejects with the cancellation', async () => {
    const guardian = task({
      id: 'guardian',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('guardian')
        try {
          await ctx.child('kid', blocker, null)
          return 'kid finished'
        } catch (error) {
          if (!(error instanceof ChildExecutionError)) throw error
          return { ...errorSummary(error), childId: error.childId, childStatus: error.childStatus }
        }
      },
    })
    const { engine, drain } = setup({ guardian, blocker })
    const { execution } = await engine.enqueue(guardian, null)
    await drain()
    const [kid] = (await engine.list({ parentId: execution.id })).items
    expect(kid).toMatchObject({ status: 'waiting' })
    expect(await engine.cancel(kid!.id)).toMatchObject({ status: 'cancelled' })
    expect((await engine.get(execution.id)).status).toBe('queued')
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: {
        name: 'ChildExecutionError',
        code: 'CANCELLED',
        childId: kid!.id,
        childStatus: 'cancelled',
        message: `child execution ${kid!.id} ended cancelled: execution was cancelled`,
      },
    })
    expect(hits('guardian')).toBe(2)
  })

  it('a child error the parent caught is the same ChildExecutionError on a later replay', async () => {
    const caught: unknown[] = []
    const forgiving = task({
      id: 'forgiving',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        try {
          await ctx.child('kid', broken, null)
        } catch (error) {
          if (!(error instanceof ChildExecutionError)) throw error
          caught.push({
            ...errorSummary(error),
            childStatus: error.childStatus,
            childCode: error.childError?.code,
          })
        }
        await ctx.sleep('after', MINUTE)
        return 'forgiven'
      },
    })
    const { engine, clock, drain } = setup({ forgiving, broken })
    const { execution } = await engine.enqueue(forgiving, null)
    await drain()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    clock.advance(MINUTE)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'forgiven' })
    expect(caught).toHaveLength(2)
    expect(caught[1]).toEqual(caught[0])
    expect(caught[0]).toMatchObject({
      name: 'ChildExecutionError',
      code: 'CHILD_BROKE',
      childStatus: 'failed',
      childCode: 'CHILD_BROKE',
    })
  })

  it('cancelling a running parent aborts it and cancels its queued children', async () => {
    let parentSignal: AbortSignal | undefined
    const busy = task({
      id: 'busy',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.spawn('side', blocker, null)
        parentSignal = ctx.signal
        return ctx.step('work', () => untilAborted(ctx.signal))
      },
    })
    const { engine, tree } = setup({ busy, blocker })
    const { execution } = await engine.enqueue(busy, null)
    const ticking = engine.executor.tick()
    await until(() => parentSignal !== undefined, 'the step')
    await engine.cancel(execution.id)
    await ticking
    expect(parentSignal!.aborted).toBe(true)
    expect((await tree(execution.id)).map((e) => [e.taskId, e.status])).toEqual([
      ['busy', 'cancelled'],
      ['blocker', 'cancelled'],
    ])
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
  })
})

describe('a parent that ends takes the children it awaited', () => {
  it('a parent that fails while children it awaited still run cancels them; a spawned child lives on', async () => {
    const childSignals: AbortSignal[] = []
    const worker = task({
      id: 'worker',
      input: z.null(),
      run: (_input, ctx) => {
        childSignals.push(ctx.signal)
        return untilAborted(ctx.signal)
      },
    })
    const fails = task({ id: 'fails', input: z.null(), run: () => Promise.reject(new TerminalError('no')) })
    const parent = task({
      id: 'parent',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.spawn('side', blocker, null)
        // ctx.all rejects at the first failure; the other children are still running then.
        return ctx.all([
          ctx.child('runs', worker, null),
          ctx.child('waits', blocker, null),
          ctx.child('fails', fails, null),
        ])
      },
    })
    const { engine, tree } = setup({ parent, worker, blocker, fails }, { concurrency: 10 })
    const { execution } = await engine.enqueue(parent, null)
    // Start the parent, then its children: the worker keeps running, the blocker waits, one fails.
    await engine.executor.tick()
    const children = engine.executor.tick()
    await until(() => childSignals.length === 1, 'the running child')
    // The failed child wakes the parent; its next attempt fails on the child's error.
    for (let i = 0; i < 200 && (await engine.get(execution.id)).status !== 'queued'; i++) await turn()
    await drainTicks(engine)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'failed', error: { code: 'TERMINAL' } })
    expect(childSignals[0]!.aborted).toBe(true)
    expect(childSignals[0]!.reason).toMatchObject({ code: 'PARENT_ENDED' })
    await children
    const byTask = Object.fromEntries(
      (await tree(execution.id)).map((e) => [e.taskId === 'blocker' ? e.id : e.taskId, e]),
    )
    expect(byTask.worker).toMatchObject({ status: 'cancelled', error: { code: 'PARENT_ENDED' } })
    expect(byTask.fails).toMatchObject({ status: 'failed' })
    const blockers = (await tree(execution.id)).filter((e) => e.taskId === 'blocker')
    // The awaited blocker is cancelled with its parent; the spawned one waits on.
    expect(blockers.map((b) => b.status).sort()).toEqual(['cancelled', 'waiting'])
    const history = (await engine.history(byTask.worker!.id)).items
    expect(history.at(-1)).toMatchObject({ from: 'running', to: 'cancelled' })
  })

  it('a parent whose park turns into a failure (a wait could not be recorded) cancels its children too', async () => {
    const parent = task({
      id: 'unlucky',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        const kid = ctx.child('kid', blocker, null)
        await ctx.step('between', () => 1) // the child's record is written by now
        return ctx.all([kid, ctx.sleep('nap', HOUR)])
      },
    })
    const { engine, storage, drain, tree } = setup({ parent, blocker })
    // The sleep's record is written behind the park; it fails, so the park becomes a failure.
    const recordSteps = storage.recordSteps.bind(storage)
    storage.recordSteps = (writes, now) =>
      writes.some((w) => w.step.name === 'nap')
        ? Promise.reject(new TerminalError('disk full'))
        : recordSteps(writes, now)
    const { execution } = await engine.enqueue(parent, null)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: { message: 'disk full' },
    })
    expect((await tree(execution.id)).map((e) => [e.taskId, e.status])).toEqual([
      ['unlucky', 'failed'],
      ['blocker', 'cancelled'],
    ])
  })

  it('a parent that completes without awaiting a child it started cancels that child', async () => {
    const impatient = task({
      id: 'impatient',
      input: z.null(),
      run: async (_input, ctx) => {
        void ctx.child('ignored', blocker, null).catch(() => {})
        await ctx.step('own-work', () => 1)
        return 'done'
      },
    })
    const { engine, drain, tree } = setup({ impatient, blocker })
    const { execution } = await engine.enqueue(impatient, null)
    await drain()
    expect((await tree(execution.id)).map((e) => [e.taskId, e.status])).toEqual([
      ['impatient', 'completed'],
      ['blocker', 'cancelled'],
    ])
  })

  it('cancelling a tree aborts a running grandchild at once, with no poll in between', async () => {
    const signals: AbortSignal[] = []
    const leaf = task({
      id: 'leaf',
      input: z.null(),
      run: (_input, ctx) => {
        signals.push(ctx.signal)
        return untilAborted(ctx.signal)
      },
    })
    const mid = task({ id: 'mid', input: z.null(), run: (_input, ctx) => ctx.child('leaf', leaf, null) })
    const top = task({ id: 'top', input: z.null(), run: (_input, ctx) => ctx.child('mid', mid, null) })
    // A real clock and a poll interval of an hour: only pushed wake-ups can make this quick.
    const { engine } = setup({ top, mid, leaf }, { clock: systemClock, pollIntervalMs: 3_600_000 })
    engine.start()
    const { execution } = await engine.enqueue(top, null)
    for (let i = 0; i < 500 && signals.length === 0; i++) await new Promise((r) => setTimeout(r, 2))
    expect(signals).toHaveLength(1)
    const aborted = new Promise<void>((resolve) => signals[0]!.addEventListener('abort', () => resolve()))
    await engine.cancel(execution.id)
    const within = await Promise.race([
      aborted.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
    ])
    expect(within).toBe(true)
    const all = (await engine.list({ rootId: execution.id })).items
    expect(all.map((e) => e.status)).toEqual(['cancelled', 'cancelled', 'cancelled'])
  })
})

// ── 6. deadlines ─────────────────────────────────────────────────────────────────────

describe('deadlines', () => {
  it('a sleeping execution past its deadline ends timed_out with DEADLINE_EXCEEDED', async () => {
    const longNap = task({
      id: 'long-nap',
      input: z.null(),
      run: async (_input, ctx) => {
        hit('body')
        await ctx.sleep('nap', DAY)
        hit('after')
        return 'rested'
      },
    })
    const { engine, clock } = setup({ longNap })
    const { execution } = await engine.enqueue(longNap, null, { deadlineMs: HOUR })
    expect(execution.deadlineAt).toBe(T0 + HOUR)
    await engine.executor.tick()
    // It parks until the sooner of its wake time and its deadline.
    expect(await engine.get(execution.id)).toMatchObject({ status: 'waiting', runAt: T0 + HOUR })
    clock.advance(HOUR - 1)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect((await engine.get(execution.id)).status).toBe('waiting')
    clock.advance(1)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'timed_out',
      finishedAt: T0 + HOUR,
      error: { code: 'DEADLINE_EXCEEDED', retryable: false },
    })
    clock.advance(DAY)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect([hits('body'), hits('after')]).toEqual([1, 0])
  })

  it('a child past its deadline wakes its parent, whose ctx.child rejects with DEADLINE_EXCEEDED', async () => {
    const watcher = task({
      id: 'watcher',
      input: z.null(),
      run: async (_input, ctx) => {
        try {
          return await ctx.child('kid', blocker, null, { deadlineMs: MINUTE })
        } catch (error) {
          return errorSummary(error).code
        }
      },
    })
    const { engine, clock, drain } = setup({ watcher, blocker })
    const { execution } = await engine.enqueue(watcher, null)
    await drain()
    clock.advance(MINUTE)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'DEADLINE_EXCEEDED' })
  })

  it('a running attempt past the deadline is aborted and ends timed_out without retry', async () => {
    const signals: AbortSignal[] = []
    const stubborn = task({
      id: 'stubborn',
      input: z.null(),
      timeoutMs: HOUR,
      retry: { maxAttempts: 5, backoff: { initialMs: 10 } },
      run: (_input, ctx) => {
        hit('body')
        signals.push(ctx.signal)
        return untilAborted(ctx.signal)
      },
    })
    const { engine, clock } = setup({ stubborn })
    const { execution } = await engine.enqueue(stubborn, null, { deadlineMs: 5000 })
    const ticking = engine.executor.tick()
    await until(() => signals.length === 1, 'the attempt')
    clock.advance(4999)
    expect(signals[0]!.aborted).toBe(false)
    clock.advance(1)
    expect(signals[0]!.aborted).toBe(true)
    expect(signals[0]!.reason).toBeInstanceOf(DeadlineExceededError)
    await ticking
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'timed_out',
      runs: 1,
      failures: 1,
      finishedAt: T0 + 5000,
      error: { name: 'DeadlineExceededError', code: 'DEADLINE_EXCEEDED', retryable: false },
    })
    clock.advance(HOUR)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(hits('body')).toBe(1)
  })
})

describe('deadlines of a tree', () => {
  it("an awaited child inherits its parent's deadline: the whole tree ends timed_out at it; a spawned child does not", async () => {
    const childSignals: AbortSignal[] = []
    const slow = task({
      id: 'slow',
      input: z.null(),
      timeoutMs: DAY,
      run: (_input, ctx) => {
        childSignals.push(ctx.signal)
        return untilAborted(ctx.signal)
      },
    })
    const parent = task({
      id: 'bounded',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.spawn('side', blocker, null)
        return ctx.all([
          ctx.child('running', slow, null),
          ctx.child('waiting', blocker, null),
          ctx.child('own-sooner', blocker, null, { deadlineMs: MINUTE }),
        ])
      },
    })
    const { engine, clock, tree } = setup({ parent, slow, blocker }, { concurrency: 10 })
    const { execution } = await engine.enqueue(parent, null, { deadlineMs: HOUR })
    await engine.executor.tick()
    const running = engine.executor.tick()
    await until(() => childSignals.length === 1, 'the running child')
    const kids = (await tree(execution.id)).slice(1)
    expect(kids.find((k) => k.taskId === 'slow')?.deadlineAt).toBe(T0 + HOUR)
    const blockerDeadlines = kids.filter((k) => k.taskId === 'blocker').map((k) => k.deadlineAt)
    // The spawned one has none, the awaited one the parent's, the one with its own sooner deadline keeps it.
    expect(blockerDeadlines.sort()).toEqual([T0 + MINUTE, T0 + HOUR, null].sort())
    clock.advance(HOUR)
    await running
    await drainTicks(engine)
    expect(childSignals[0]!.aborted).toBe(true)
    expect(childSignals[0]!.reason).toBeInstanceOf(DeadlineExceededError)
    const after = await tree(execution.id)
    expect(after[0]).toMatchObject({ status: 'timed_out', error: { code: 'DEADLINE_EXCEEDED' } })
    const states = after
      .slice(1)
      .map((e) => (e.deadlineAt === null ? `spawned ${e.status}` : `${e.taskId} ${e.status}`))
    // The spawned child lives on: the hour the clock jumped timed out its run, which is queued
    // for its retry (due a back-off after that failure was written), not ended by the deadline.
    expect(states.sort()).toEqual(
      ['blocker timed_out', 'blocker timed_out', 'slow timed_out', 'spawned queued'].sort(),
    )
  })

  it('a retry whose back-off runs past the deadline ends timed_out at the deadline, without another attempt', async () => {
    const flaky = task({
      id: 'flaky-deadline',
      input: z.null(),
      retry: { maxAttempts: 5, backoff: { initialMs: HOUR, factor: 1, maxMs: HOUR } },
      run: () => {
        hit('flaky')
        throw new Error('down')
      },
    })
    const { engine, clock } = setup({ flaky })
    const { execution } = await engine.enqueue(flaky, null, { deadlineMs: 10 * MINUTE })
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', failures: 1 })
    clock.advance(10 * MINUTE)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'timed_out',
      finishedAt: T0 + 10 * MINUTE,
      error: { code: 'DEADLINE_EXCEEDED' },
    })
    clock.advance(DAY)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(hits('flaky')).toBe(1)
  })
})

// ── 7. history ───────────────────────────────────────────────────────────────────────

describe('history', () => {
  it('records steps, waits, signals and children by name, in order', async () => {
    const everything = task({
      id: 'everything',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.step('fetch', () => 1)
        await ctx.sleep('nap', 1000)
        const go = await ctx.waitForSignal<number>('go')
        const doubled = await ctx.child('kid', double, { n: go })
        await ctx.spawn('fire', double, { n: 0 })
        return doubled
      },
    })
    const { engine, clock, drain } = setup({ everything, double })
    const { execution } = await engine.enqueue(everything, null)
    await drain()
    clock.advance(1000)
    await drain()
    await engine.signal(execution.id, 'go', 7)
    await drain()
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 14 })

    const history = (await engine.history(execution.id)).items
    const seqs = history.map((h) => h.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(await timeline(engine, execution.id)).toEqual([
      '→ queued',
      '→ running',
      'step fetch',
      'wait nap',
      '→ waiting',
      '→ queued',
      '→ running',
      'signal go', // the wait starting
      '→ waiting',
      'signal go', // the signal arriving (engine.signal)
      '→ queued',
      '→ running',
      'signal go', // the wait taking it
      'child kid',
      '→ waiting',
      '→ queued',
      '→ running',
      'child fire',
      '→ completed',
    ])
    const events = await runEvents(engine, execution.id)
    expect(events.filter((_e, i) => !isRecheck(events, i))).toEqual([
      { event: 'step', name: 'fetch', status: 'done' },
      { event: 'wait', name: 'nap', status: 'waiting' },
      { event: 'signal', name: 'go', status: 'waiting' },
      { event: 'signal', name: 'go', status: undefined },
      { event: 'signal', name: 'go', status: 'done' },
      { event: 'child', name: 'kid', status: 'waiting' },
      { event: 'child', name: 'fire', status: 'done' },
    ])
    const arrival = history.find((h) => h.event === 'signal' && h.from === 'waiting')
    expect(arrival).toMatchObject({
      to: 'waiting',
      name: 'go',
      detail: { seq: expect.any(Number) as number },
    })
    const kid = history.find((h) => h.event === 'child' && h.name === 'kid')!
    const [child] = (
      await engine.list({ parentId: execution.id, taskId: 'double', limit: 2 })
    ).items.reverse()
    expect(kid.detail).toMatchObject({ kind: 'child', status: 'waiting', childId: child!.id })
  })
})

// ── 8. attempts vs failures ──────────────────────────────────────────────────────────

describe('attempts and failures', () => {
  it('parks are not failures: 5 sleeps complete with maxAttempts 1, and ctx.attempt stays 1', async () => {
    const attempts: number[] = []
    const napper = task({
      id: 'napper',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        attempts.push(ctx.attempt)
        for (let i = 1; i <= 5; i++) await ctx.sleep(`nap-${i}`, MINUTE)
        return 'rested'
      },
    })
    const { engine, clock } = setup({ napper })
    const { execution } = await engine.enqueue(napper, null)
    for (let i = 1; i <= 5; i++) {
      expect(await engine.executor.tick()).toEqual({ claimed: 1 })
      expect(await engine.get(execution.id)).toMatchObject({
        status: 'waiting',
        runs: i,
        attempt: 1,
        failures: 0,
      })
      clock.advance(MINUTE)
    }
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 'rested',
      runs: 6,
      attempt: 1,
      failures: 0,
      maxAttempts: 1,
    })
    expect(attempts).toEqual([1, 1, 1, 1, 1, 1])
  })

  it('ctx.attempt counts failures only: after one failure it is 2 across later resumes', async () => {
    const attempts: number[] = []
    const bumpy = task({
      id: 'bumpy',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 10 } },
      run: async (_input, ctx) => {
        attempts.push(ctx.attempt)
        await ctx.sleep('first', MINUTE)
        await ctx.step('flaky', () => {
          if (hit('flaky') === 1) throw new Error('once')
        })
        await ctx.sleep('second', MINUTE)
        return ctx.attempt
      },
    })
    const { engine, clock } = setup({ bumpy })
    const { execution } = await engine.enqueue(bumpy, null)
    await engine.executor.tick() // parks on "first"
    clock.advance(MINUTE)
    await engine.executor.tick() // fails in "flaky"
    expect(await engine.get(execution.id)).toMatchObject({ status: 'queued', failures: 1 })
    clock.advance(10)
    await engine.executor.tick() // parks on "second"
    clock.advance(MINUTE)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 2,
      runs: 4,
      attempt: 2,
      failures: 1,
    })
    expect(attempts).toEqual([1, 1, 2, 2])
  })
})

// ── a started engine with the real clock ─────────────────────────────────────────────

describe('started engine', () => {
  it('runs a tree of children and short sleeps to completion, woken without polling', async () => {
    const napThenDouble = task({
      id: 'nap-then-double',
      input: z.object({ n: z.number() }),
      run: async ({ n }, ctx) => {
        await ctx.sleep('nap', 5)
        return ctx.step('compute', () => n * 2)
      },
    })
    const fan = task({
      id: 'fan',
      input: z.null(),
      run: async (_input, ctx) => {
        const values = await ctx.all([1, 2, 3].map((n) => ctx.child(`kid-${n}`, napThenDouble, { n })))
        await ctx.sleep('settle', 5)
        return values.reduce((a, b) => a + b, 0)
      },
    })
    const { engine } = setup({ fan, napThenDouble }, { clock: systemClock, pollIntervalMs: 3_600_000 })
    engine.start()
    const { execution } = await engine.enqueue(fan, null)
    expect(await engine.waitFor(execution.id, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
      output: 12,
    })
    expect((await engine.list({ rootId: execution.id })).items).toHaveLength(4)
  })
})
