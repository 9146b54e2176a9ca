import { getEventListeners } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import {
  CancelledError,
  ConflictError,
  Engine,
  LeaseExpiredError,
  ManualClock,
  MAX_TIMEOUT_MS,
  NotFoundError,
  PayloadTooLargeError,
  RetryableError,
  ShutdownError,
  TerminalError,
  TimeoutError,
  UnknownTaskError,
  ValidationError,
  systemClock,
  task,
  type Clock,
  type EngineOptions,
  type EnqueueOptions,
  type Logger,
  type TaskContext,
  type TaskMap,
} from '@ratchet/core'
import { openSqliteStorage, type SqliteStorage } from '@ratchet/storage'
import { T0, openEngine } from './open-engine'

/** Lets pending setImmediate callbacks (pumps, flushes) run. Not a sleep: no time passes. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
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
  count: () => Promise<number>
}

/** A real SQLite file in a fresh temp dir, an engine on a ManualClock, cleaned up after the test. */
function setup(tasks: TaskMap, options: Partial<EngineOptions> & { clock?: Clock } = {}): Setup {
  const { engine, storage, clock } = openEngine(tasks, options)
  return { engine, storage, clock, count: async () => (await storage.list({ limit: 10_000 })).length }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the promise to reject')
}

const hello = task({
  id: 'hello',
  input: z.object({ name: z.string() }),
  run: ({ name }) => ({ greeting: `hello ${name}` }),
})

describe('enqueue validation writes nothing', () => {
  const signup = task({
    id: 'signup',
    input: z.object({ email: z.email(), age: z.number().int().min(0) }),
    run: () => null,
  })

  it('rejects an unknown task', async () => {
    const { engine, count } = setup({ hello })
    await engine.enqueue('hello', { name: 'existing' })
    const error = await rejection(engine.enqueue('nope', {}))
    expect(error).toBeInstanceOf(UnknownTaskError)
    expect(error).toMatchObject({
      code: 'UNKNOWN_TASK',
      message: 'unknown task "nope"; registered tasks: hello',
    })
    expect(await count()).toBe(1)
  })

  it('rejects input that fails the schema, with issues naming the field', async () => {
    const { engine, count } = setup({ signup })
    await engine.enqueue('signup', { email: 'a@example.com', age: 3 })
    const error = await rejection(engine.enqueue('signup', { email: 'not-an-email', age: 3 }))
    expect(error).toBeInstanceOf(ValidationError)
    const { issues, message, code } = error as ValidationError
    expect(code).toBe('INVALID_INPUT')
    expect(issues).toEqual([{ path: ['input', 'email'], message: expect.any(String) as string }])
    expect(message).toMatch(/^invalid input for task "signup": email: /)
    expect(await count()).toBe(1)
  })

  it.each<[EnqueueOptions, string]>([
    [{ idempotencyKey: '' }, 'idempotencyKey'],
    [{ idempotencyKey: 'k'.repeat(256) }, 'idempotencyKey'],
    [{ delayMs: -1 }, 'delayMs'],
    [{ delayMs: 1.5 }, 'delayMs'],
    [{ runAt: new Date(Number.NaN) }, 'runAt'],
    [{ runAt: T0 + 5, delayMs: 5 }, 'runAt'],
    [{ priority: 1001 }, 'priority'],
    [{ priority: 0.5 }, 'priority'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ timeoutMs: MAX_TIMEOUT_MS + 1 }, 'timeoutMs'],
    [{ maxAttempts: 0 }, 'maxAttempts'],
    [{ maxAttempts: 1001 }, 'maxAttempts'],
  ])('rejects the option %j', async (options, field) => {
    const { engine, count } = setup({ hello })
    await engine.enqueue('hello', { name: 'existing' })
    const error = await rejection(engine.enqueue('hello', { name: 'x' }, options))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual([['options', field]])
    expect((error as ValidationError).message).toContain(`options.${field}: `)
    expect(await count()).toBe(1)
  })

  it('rejects an input above maxPayloadBytes', async () => {
    const { engine, count } = setup({ hello }, { maxPayloadBytes: 100 })
    await engine.enqueue('hello', { name: 'small' })
    const error = await rejection(engine.enqueue('hello', { name: 'x'.repeat(100) }))
    expect(error).toBeInstanceOf(PayloadTooLargeError)
    expect(error).toMatchObject({ field: 'input', sizeBytes: 111, limitBytes: 100 })
    expect(await count()).toBe(1)
  })

  it('enqueueMany stores none of a batch with an invalid request, and says which', async () => {
    const { engine, count } = setup({ hello })
    const error = await rejection(
      engine.enqueueMany([
        { task: 'hello', input: { name: 'ok' } },
        { task: 'hello', input: { name: 42 } },
      ]),
    )
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as Error).message).toMatch(/^request 1: invalid input for task "hello": name: /)
    expect(await count()).toBe(0)
  })
})

describe('enqueue', () => {
  it('stores the parsed input and a snapshot of the options', async () => {
    const shaped = task({
      id: 'shaped',
      input: z.object({ n: z.coerce.number(), tag: z.string().default('none') }),
      timeoutMs: 5000,
      priority: 2,
      retry: { maxAttempts: 4, backoff: { initialMs: 10 } },
      run: () => null,
    })
    const { engine } = setup({ myShaped: shaped })
    const byId = await engine.enqueue('shaped', { n: '7' }, { delayMs: 1000 })
    expect(byId.created).toBe(true)
    expect(byId.execution).toMatchObject({
      taskId: 'shaped',
      status: 'queued',
      input: { n: 7, tag: 'none' },
      runs: 0,
      attempt: 1,
      failures: 0,
      recoveries: 0,
      maxRecoveries: 5,
      maxAttempts: 4,
      timeoutMs: 5000,
      priority: 2,
      runAt: T0 + 1000,
      createdAt: T0,
      output: undefined,
      error: null,
    })
    const byKey = await engine.enqueue(
      'myShaped',
      { n: 1 },
      { priority: -3, timeoutMs: 10, maxAttempts: 1, runAt: new Date(T0 + 50) },
    )
    expect(byKey.execution).toMatchObject({
      taskId: 'shaped',
      priority: -3,
      timeoutMs: 10,
      maxAttempts: 1,
      runAt: T0 + 50,
    })
    const byTask = await engine.enqueue(shaped, { n: 1 }, { runAt: T0 - 10_000 })
    expect(byTask.execution).toMatchObject({ taskId: 'shaped', runAt: T0 })
    expect((await engine.history(byId.execution.id)).items).toEqual([
      {
        seq: expect.any(Number) as number,
        at: T0,
        from: null,
        to: 'queued',
        run: 0,
        detail: null,
        event: 'status',
        name: null,
      },
    ])
  })

  it('with a used idempotency key returns the existing execution', async () => {
    const { engine, count } = setup({ hello })
    const first = await engine.enqueue('hello', { name: 'a' }, { idempotencyKey: 'user-1' })
    const again = await engine.enqueue('hello', { name: 'a' }, { idempotencyKey: 'user-1', priority: 9 })
    expect(again).toEqual({ execution: first.execution, created: false })
    expect((await engine.history(first.execution.id)).items).toHaveLength(1)
    expect(await count()).toBe(1)
  })

  it('with a used idempotency key and another input is a CONFLICT', async () => {
    const { engine, count } = setup({ hello })
    const first = await engine.enqueue('hello', { name: 'a' }, { idempotencyKey: 'user-1' })
    const error = await rejection(engine.enqueue('hello', { name: 'b' }, { idempotencyKey: 'user-1' }))
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({ code: 'CONFLICT' })
    expect((error as Error).message).toContain(first.execution.id)
    expect(await engine.get(first.execution.id)).toEqual(first.execution)
    expect(await count()).toBe(1)
  })

  it('enqueueMany with one CONFLICT stores none of the batch', async () => {
    const { engine, count } = setup({ hello })
    await engine.enqueue('hello', { name: 'a' }, { idempotencyKey: 'user-1' })
    const error = await rejection(
      engine.enqueueMany([
        { task: 'hello', input: { name: 'fresh' } },
        { task: 'hello', input: { name: 'b' }, options: { idempotencyKey: 'user-1' } },
      ]),
    )
    expect(error).toBeInstanceOf(ConflictError)
    expect(await count()).toBe(1)
  })
})

describe('concurrent enqueues (group commit)', () => {
  it('with one idempotency key yield one execution', async () => {
    const { engine, count } = setup({ hello })
    const results = await Promise.all(
      Array.from({ length: 5 }, () => engine.enqueue('hello', { name: 'a' }, { idempotencyKey: 'same' })),
    )
    expect(results.filter((r) => r.created)).toHaveLength(1)
    expect(new Set(results.map((r) => r.execution.id)).size).toBe(1)
    expect(await count()).toBe(1)
    expect((await engine.history(results[0]!.execution.id)).items).toHaveLength(1)
  })

  it('with one idempotency key and different inputs: one is stored, the others are CONFLICTs', async () => {
    const { engine, count } = setup({ hello })
    const settled = await Promise.allSettled([
      engine.enqueue('hello', { name: 'a' }, { idempotencyKey: 'same' }),
      engine.enqueue('hello', { name: 'b' }, { idempotencyKey: 'same' }),
      engine.enqueue('hello', { name: 'c' }),
    ])
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError)
    expect(await count()).toBe(2)
  })

  it('an invalid request does not affect the others', async () => {
    const { engine, count } = setup({ hello })
    const settled = await Promise.allSettled([
      engine.enqueue('hello', { name: 'a' }),
      engine.enqueue('hello', { name: 1 }),
      engine.enqueue('hello', { name: 'c' }),
    ])
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(await count()).toBe(2)
  })
})

describe('executor.tick()', () => {
  it('runs a task to completion', async () => {
    const contexts: TaskContext[] = []
    const greet = task({
      id: 'greet',
      input: z.object({ name: z.string() }),
      output: z.object({ greeting: z.string() }),
      run: ({ name }, ctx) => {
        contexts.push(ctx)
        return { greeting: `hello ${name}` }
      },
    })
    const { engine, clock } = setup({ greet })
    const { execution } = await engine.enqueue('greet', { name: 'ada' })
    clock.advance(5)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: { greeting: 'hello ada' },
      error: null,
      runs: 1,
      attempt: 1,
      startedAt: T0 + 5,
      finishedAt: T0 + 5,
    })
    expect(contexts).toHaveLength(1)
    expect(contexts[0]).toMatchObject({
      executionId: execution.id,
      taskId: 'greet',
      attempt: 1,
      maxAttempts: 3,
    })
    expect(contexts[0]!.signal.aborted).toBe(false)
    expect((await engine.history(execution.id)).items.map((h) => [h.from, h.to, h.run])).toEqual([
      [null, 'queued', 0],
      ['queued', 'running', 1],
      ['running', 'completed', 1],
    ])
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
  })

  it('starts delayed work only when it is due', async () => {
    let runs = 0
    const counted = task({ id: 'counted', input: z.null(), run: () => ++runs })
    const { engine, clock } = setup({ counted })
    const { execution } = await engine.enqueue('counted', null, { delayMs: 1000 })
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    clock.advance(999)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    clock.advance(1)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(runs).toBe(1)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 1 })
  })

  it('retries a throwing task with the configured back-off, then fails with the stored error', async () => {
    let calls = 0
    const flaky = task({
      id: 'flaky',
      input: z.null(),
      retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 3, maxMs: 2500 } },
      run: () => {
        calls++
        throw new Error(`boom ${calls}`)
      },
    })
    const { engine, clock } = setup({ flaky })
    const { execution } = await engine.enqueue('flaky', null)
    const { id } = execution

    await engine.executor.tick()
    // random() = 0.999: the first delay is 0.999 × 1000, the second 0.999 × min(2500, 3000).
    expect(await engine.get(id)).toMatchObject({
      status: 'queued',
      runs: 1,
      attempt: 2,
      failures: 1,
      runAt: T0 + 999,
      error: { name: 'Error', message: 'boom 1', retryable: true },
    })
    clock.advance(998)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    clock.advance(1)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(id)).toMatchObject({
      status: 'queued',
      runs: 2,
      attempt: 3,
      failures: 2,
      runAt: T0 + 999 + 2497,
      error: { message: 'boom 2' },
    })
    clock.set(T0 + 999 + 2497)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })

    const failed = await engine.get(id)
    expect(failed).toMatchObject({
      status: 'failed',
      runs: 3,
      attempt: 3,
      failures: 3,
      finishedAt: T0 + 999 + 2497,
      output: undefined,
    })
    expect(failed.error).toMatchObject({ name: 'Error', message: 'boom 3', retryable: true })
    expect(failed.error?.stack).toContain('boom 3')
    expect(calls).toBe(3)
    const history = (await engine.history(id)).items
    expect(history.map((h) => [h.to, h.run, h.at])).toEqual([
      ['queued', 0, T0],
      ['running', 1, T0],
      ['queued', 1, T0],
      ['running', 2, T0 + 999],
      ['queued', 2, T0 + 999],
      ['running', 3, T0 + 999 + 2497],
      ['failed', 3, T0 + 999 + 2497],
    ])
    expect(history[2]!.detail).toMatchObject({
      transition: 'retry',
      runAt: T0 + 999,
      error: { message: 'boom 1' },
    })
    expect(history[4]!.detail).toMatchObject({
      transition: 'retry',
      runAt: T0 + 999 + 2497,
      error: { message: 'boom 2' },
    })
    expect(history[6]!.detail).toMatchObject({ error: { message: 'boom 3' } })
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
  })

  it.each([
    [
      'a TerminalError',
      () => new TerminalError('card declined', { code: 'CARD_DECLINED' }),
      { name: 'TerminalError', code: 'CARD_DECLINED' },
    ],
    [
      'an error with retryable: false',
      () => Object.assign(new Error('nope'), { retryable: false }),
      { name: 'Error', retryable: false },
    ],
  ])('fails at once on %s', async (_title, makeError, stored) => {
    let calls = 0
    const doomed = task({
      id: 'doomed',
      input: z.null(),
      retry: { maxAttempts: 5 },
      run: () => {
        calls++
        throw makeError()
      },
    })
    const { engine, clock } = setup({ doomed })
    const { execution } = await engine.enqueue('doomed', null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      runs: 1,
      attempt: 1,
      failures: 1,
      error: { ...stored, retryable: false },
    })
    clock.advance(3_600_000)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(calls).toBe(1)
  })

  it('honours RetryableError.retryAfterMs instead of the back-off', async () => {
    let calls = 0
    const limited = task({
      id: 'limited',
      input: z.null(),
      retry: { backoff: { initialMs: 10 } },
      run: () => {
        if (++calls === 1) throw new RetryableError('rate limited', { retryAfterMs: 42_000 })
        return 'ok'
      },
    })
    const { engine, clock } = setup({ limited })
    const { execution } = await engine.enqueue('limited', null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'queued',
      runAt: T0 + 42_000,
      error: { code: 'RETRYABLE', message: 'rate limited' },
    })
    clock.advance(41_999)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    clock.advance(1)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 'ok',
      runs: 2,
      attempt: 2,
      error: null,
    })
  })

  it('aborts ctx.signal with a TimeoutError past timeoutMs, retries, and ends timed_out on the last attempt', async () => {
    const signals: AbortSignal[] = []
    let started = deferred()
    const lateResult = deferred<string>()
    const slow = task({
      id: 'slow',
      input: z.null(),
      timeoutMs: 1000,
      retry: { maxAttempts: 2, backoff: { initialMs: 100 } },
      run: async (_input, ctx) => {
        signals.push(ctx.signal)
        started.resolve()
        // The first attempt honours the signal; the second ignores it and returns late.
        return ctx.attempt === 1 ? untilAborted(ctx.signal) : lateResult.promise
      },
    })
    const { engine, clock } = setup({ slow })
    const { execution } = await engine.enqueue('slow', null)
    const { id } = execution

    let ticking = engine.executor.tick()
    await started.promise
    clock.advance(999)
    expect(signals[0]!.aborted).toBe(false)
    clock.advance(1)
    expect(signals[0]!.aborted).toBe(true)
    expect(signals[0]!.reason).toBeInstanceOf(TimeoutError)
    await ticking
    expect(await engine.get(id)).toMatchObject({
      status: 'queued',
      runs: 1,
      attempt: 2,
      runAt: T0 + 1000 + 99,
      error: { name: 'TimeoutError', code: 'TIMEOUT', retryable: true },
    })

    clock.advance(99)
    started = deferred()
    ticking = engine.executor.tick()
    await started.promise
    clock.advance(1000)
    expect(signals[1]!.reason).toBeInstanceOf(TimeoutError)
    await ticking
    const timedOut = await engine.get(id)
    expect(timedOut).toMatchObject({
      status: 'timed_out',
      runs: 2,
      attempt: 2,
      failures: 2,
      finishedAt: T0 + 2099,
      error: { code: 'TIMEOUT' },
    })

    lateResult.resolve('too late')
    await turn()
    expect(await engine.get(id)).toEqual(timedOut)
    expect((await engine.history(id)).items.at(-1)).toMatchObject({
      from: 'running',
      to: 'timed_out',
      run: 2,
    })
  })

  it('fails terminally when the output does not match the output schema', async () => {
    const counter = task({
      id: 'counter',
      input: z.null(),
      output: z.object({ count: z.number() }),
      retry: { maxAttempts: 3 },
      run: () => ({ count: 'three' }) as unknown as { count: number },
    })
    const { engine } = setup({ counter })
    const { execution } = await engine.enqueue('counter', null)
    await engine.executor.tick()
    const failed = await engine.get(execution.id)
    expect(failed).toMatchObject({
      status: 'failed',
      runs: 1,
      attempt: 1,
      output: undefined,
      error: { name: 'ValidationError', code: 'INVALID_OUTPUT', retryable: false },
    })
    expect(failed.error?.message).toMatch(
      /^task "counter" returned an output that does not match its output schema: count: /,
    )
  })

  it('fails terminally when the output is above maxPayloadBytes', async () => {
    const big = task({ id: 'big', input: z.null(), run: () => 'x'.repeat(200) })
    const { engine } = setup({ big }, { maxPayloadBytes: 100 })
    const { execution } = await engine.enqueue('big', null)
    await engine.executor.tick()
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'failed',
      runs: 1,
      attempt: 1,
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'output is 202 bytes, above the limit of 100 bytes' },
    })
  })
})

describe('cancel', () => {
  it('cancels a queued execution, which then never runs', async () => {
    let runs = 0
    const counted = task({ id: 'counted', input: z.null(), run: () => ++runs })
    const { engine, clock } = setup({ counted })
    const { execution } = await engine.enqueue('counted', null)
    clock.advance(10)
    const cancelled = await engine.cancel(execution.id)
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      finishedAt: T0 + 10,
      error: { name: 'CancelledError', code: 'CANCELLED', retryable: false },
    })
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(runs).toBe(0)
    // Cancelling again returns it unchanged.
    expect(await engine.cancel(execution.id)).toEqual(cancelled)
    expect((await engine.history(execution.id)).items.map((h) => [h.from, h.to])).toEqual([
      [null, 'queued'],
      ['queued', 'cancelled'],
    ])
  })

  it('aborts a running attempt with a CancelledError; its late result changes nothing', async () => {
    const started = deferred<AbortSignal>()
    const finish = deferred<string>()
    const stubborn = task({
      id: 'stubborn',
      input: z.null(),
      run: (_input, ctx) => {
        started.resolve(ctx.signal)
        return finish.promise
      },
    })
    const { engine, clock } = setup({ stubborn })
    const { execution } = await engine.enqueue('stubborn', null)
    const ticking = engine.executor.tick()
    const signal = await started.promise
    clock.advance(5)
    expect(await engine.cancel(execution.id)).toMatchObject({ status: 'cancelled' })
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBeInstanceOf(CancelledError)
    await ticking
    expect(engine.executor.activeAttempts).toBe(0)

    finish.resolve('late')
    await turn()
    await turn()
    const after = await engine.get(execution.id)
    expect(after).toMatchObject({
      status: 'cancelled',
      output: undefined,
      runs: 1,
      attempt: 1,
      error: { code: 'CANCELLED' },
    })
    expect((await engine.history(execution.id)).items.map((h) => [h.from, h.to, h.run])).toEqual([
      [null, 'queued', 0],
      ['queued', 'running', 1],
      ['running', 'cancelled', 1],
    ])
  })

  it('of a finished execution is a CONFLICT, of an unknown one NOT_FOUND', async () => {
    const { engine } = setup({ hello })
    const { execution } = await engine.enqueue('hello', { name: 'a' })
    await engine.executor.tick()
    await expect(engine.cancel(execution.id)).rejects.toBeInstanceOf(ConflictError)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed' })
    await expect(engine.cancel('0190a5f2-7c1e-7000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError)
    await expect(engine.cancel('not-an-id')).rejects.toBeInstanceOf(NotFoundError)
  })
})

describe('started executor', () => {
  it('with the real clock, completes work woken by enqueue and by its due time, without polling', async () => {
    const { engine } = setup({ hello }, { clock: systemClock, pollIntervalMs: 3_600_000 })
    engine.start()
    const first = await engine.enqueue('hello', { name: 'one' })
    expect(await engine.waitFor(first.execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
    })
    // The executor is idle now; only the enqueue's wake-up can start this one.
    const second = await engine.enqueue('hello', { name: 'two' })
    expect(await engine.waitFor(second.execution.id, { timeoutMs: 5000 })).toMatchObject({
      status: 'completed',
      output: { greeting: 'hello two' },
    })
    const delayed = await engine.enqueue('hello', { name: 'later' }, { delayMs: 20 })
    const done = await engine.waitFor(delayed.execution.id, { timeoutMs: 5000 })
    expect(done).toMatchObject({ status: 'completed' })
    expect(done.startedAt).toBeGreaterThanOrEqual(delayed.execution.runAt)
  })

  it('keeps a long attempt alive with heartbeats', async () => {
    const started = deferred()
    const finish = deferred<string>()
    const long = task({
      id: 'long',
      input: z.null(),
      timeoutMs: 60_000,
      run: () => {
        started.resolve()
        return finish.promise
      },
    })
    const { engine, storage, clock } = setup(
      { long },
      { leaseMs: 3000, heartbeatMs: 1000, pollIntervalMs: 500 },
    )
    engine.start()
    const { execution } = await engine.enqueue('long', null)
    await started.promise
    for (let i = 0; i < 20; i++) {
      clock.advance(500)
      await turn()
      await turn()
    }
    const row = await storage.get(execution.id)
    expect(row).toMatchObject({ status: 'running', runs: 1, leaseOwner: 'worker-test' })
    expect(row!.leaseExpiresAt).toBeGreaterThan(clock.now())
    finish.resolve('done')
    expect(await engine.waitFor(execution.id, { timeoutMs: 1000 })).toMatchObject({
      status: 'completed',
      runs: 1,
      output: 'done',
    })
  })

  it('aborts an attempt whose lease a heartbeat finds gone', async () => {
    const started = deferred<AbortSignal>()
    const held = task({
      id: 'held',
      input: z.null(),
      run: (_input, ctx) => {
        started.resolve(ctx.signal)
        return untilAborted(ctx.signal)
      },
    })
    const { engine, storage, clock } = setup({ held }, { leaseMs: 3000, heartbeatMs: 1000 })
    engine.start()
    const { execution } = await engine.enqueue('held', null)
    const signal = await started.promise
    // Another process cancels it: this process's executor does not hear of it directly.
    await storage.cancel(
      execution.id,
      clock.now(),
      '{"name":"CancelledError","message":"elsewhere","retryable":false}',
    )
    expect(signal.aborted).toBe(false)
    clock.advance(1000)
    await turn()
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBeInstanceOf(LeaseExpiredError)
    await turn()
    expect(engine.executor.activeAttempts).toBe(0)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'cancelled', runs: 1, attempt: 1 })
  })

  it('recovers the leases of a dead process at once on start (single writer)', async () => {
    const job = task({ id: 'job', input: z.null(), run: (_input, ctx) => ctx.attempt })
    const { engine, storage, clock } = setup({ job })
    const { execution } = await engine.enqueue('job', null)
    await storage.claim({
      owner: 'dead-process',
      now: clock.now(),
      leaseMs: 30_000,
      limit: 1,
      taskIds: ['job'],
    })
    engine.start()
    // The lost run is not a failure: the next one is still attempt 1.
    expect(await engine.waitFor(execution.id, { timeoutMs: 1 })).toMatchObject({
      status: 'completed',
      output: 1,
      runs: 2,
      attempt: 1,
      failures: 0,
      recoveries: 0,
    })
    expect((await engine.history(execution.id)).items[2]).toMatchObject({
      from: 'running',
      to: 'queued',
      run: 1,
      detail: { transition: 'recover', recoveries: 1, progressed: false },
    })
  })

  it('stop({ drainMs }) waits for a running attempt to finish', async () => {
    const started = deferred()
    const finish = deferred<string>()
    const job = task({
      id: 'job',
      input: z.null(),
      run: () => {
        started.resolve()
        return finish.promise
      },
    })
    const { engine, clock } = setup({ job })
    engine.start()
    const { execution } = await engine.enqueue('job', null)
    await started.promise
    let stopped = false
    const stopping = engine.stop({ drainMs: 5000 }).then(() => (stopped = true))
    expect(engine.executor.isRunning).toBe(false)
    clock.advance(4999)
    await turn()
    expect(stopped).toBe(false)
    finish.resolve('finished')
    await stopping
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 'finished',
      runs: 1,
    })
    // A stopped executor claims nothing more.
    const late = await engine.enqueue('job', null)
    await turn()
    expect(await engine.get(late.execution.id)).toMatchObject({ status: 'queued', runs: 0, attempt: 1 })
  })

  it('stop({ drainMs }) releases an attempt that outlives the drain', async () => {
    const started = deferred<AbortSignal>()
    const finish = deferred<string>()
    const job = task({
      id: 'job',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: (_input, ctx) => {
        started.resolve(ctx.signal)
        return finish.promise // ignores the signal
      },
    })
    const { engine, storage, clock } = setup({ job })
    engine.start()
    const { execution } = await engine.enqueue('job', null)
    const signal = await started.promise
    const stopping = engine.stop({ drainMs: 1000 })
    clock.advance(1000)
    await stopping
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBeInstanceOf(ShutdownError)
    const released = await engine.get(execution.id)
    expect(released).toMatchObject({
      status: 'queued',
      runs: 1,
      attempt: 1,
      failures: 0,
      runAt: T0 + 1000,
      error: { code: 'SHUTDOWN', retryable: true },
    })
    expect((await engine.history(execution.id)).items.at(-1)).toMatchObject({
      from: 'running',
      to: 'queued',
      run: 1,
      detail: { transition: 'release', runAt: T0 + 1000 },
    })
    expect(await storage.get(execution.id)).toMatchObject({ leaseOwner: null, leaseExpiresAt: null })

    finish.resolve('too late')
    await turn()
    expect(await engine.get(execution.id)).toEqual(released)

    // A release does not use up the last attempt: the next worker runs it again.
    const next = new Engine({
      storage,
      tasks: { job: task({ id: 'job', input: z.null(), run: () => 'second' }) },
      clock,
    })
    expect(await next.executor.tick()).toEqual({ claimed: 1 })
    expect(await next.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 'second',
      runs: 2,
      attempt: 1,
    })
  })
})

describe('reads', () => {
  it('list pages newest first with a cursor and filters by task key and status', async () => {
    const other = task({ id: 'other-task', input: z.null(), run: () => null })
    const { engine } = setup({ hello, other })
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      ids.push(
        (await engine.enqueue(i % 2 ? 'other' : 'hello', i % 2 ? null : { name: `n${i}` })).execution.id,
      )
    }
    const newestFirst = [...ids].reverse()

    const page1 = await engine.list({ limit: 2 })
    expect(page1.items.map((e) => e.id)).toEqual(newestFirst.slice(0, 2))
    expect(page1.nextCursor).toBe(newestFirst[1])
    const page2 = await engine.list({ limit: 2, cursor: page1.nextCursor! })
    expect(page2.items.map((e) => e.id)).toEqual(newestFirst.slice(2, 4))
    const page3 = await engine.list({ limit: 2, cursor: page2.nextCursor! })
    // A summary: the execution without its payloads, its error reduced.
    const { input: _input, output: _output, ...summary } = await engine.get(ids[0]!)
    expect(page3).toEqual({ items: [summary], nextCursor: null })
    expect((await engine.list({ limit: 5 })).nextCursor).toBeNull()

    expect((await engine.list({ taskId: 'other' })).items.map((e) => e.id)).toEqual([ids[3], ids[1]])
    expect((await engine.list({ taskId: 'other-task' })).items).toHaveLength(2)
    await engine.cancel(ids[2]!)
    expect((await engine.list({ status: 'cancelled' })).items.map((e) => e.id)).toEqual([ids[2]])
    expect(
      (await engine.list({ status: ['queued', 'cancelled'], taskId: 'hello' })).items.map((e) => e.id),
    ).toEqual([ids[4], ids[2], ids[0]])
  })

  it('list rejects a bad limit or cursor', async () => {
    const { engine } = setup({ hello })
    for (const limit of [0, 501, 1.5])
      await expect(engine.list({ limit })).rejects.toBeInstanceOf(ValidationError)
    await expect(engine.list({ cursor: 'nope' })).rejects.toMatchObject({ issues: [{ path: ['cursor'] }] })
  })

  it('get and history of an unknown execution are NOT_FOUND', async () => {
    const { engine } = setup({ hello })
    await expect(engine.get('0190a5f2-7c1e-7000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError)
    await expect(engine.get("' OR 1=1 --")).rejects.toBeInstanceOf(NotFoundError)
    await expect(engine.history('0190a5f2-7c1e-7000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError)
  })
})

describe('waitFor', () => {
  it('resolves when the execution finishes, and with its current state at the timeout', async () => {
    const started = deferred()
    const finish = deferred<string>()
    const job = task({
      id: 'job',
      input: z.null(),
      run: () => {
        started.resolve()
        return finish.promise
      },
    })
    const { engine, clock } = setup({ job })
    const { execution } = await engine.enqueue('job', null)
    const ticking = engine.executor.tick()
    await started.promise
    expect(await engine.waitFor(execution.id, { timeoutMs: 0 })).toMatchObject({ status: 'running' })
    let result: unknown
    const waiting = engine
      .waitFor(execution.id, { timeoutMs: 60_000, pollMs: 60_000 })
      .then((e) => (result = e))
    await turn()
    expect(result).toBeUndefined()
    finish.resolve('done')
    await ticking
    await waiting
    expect(result).toMatchObject({ status: 'completed', output: 'done' })
    expect(clock.now()).toBe(T0)
  })

  it('does not miss a finish that happens while it reads the execution', async () => {
    const job = task({ id: 'job', input: z.null(), run: () => 'done' })
    const dir = mkdtempSync(join(tmpdir(), 'ratchet-'))
    const storage = openSqliteStorage({ filename: join(dir, 'ratchet.db') })
    onTestFinished(async () => {
      await storage.close()
      rmSync(dir, { recursive: true, force: true })
    })
    // A storage whose reads take a while (as over a network), opening a race window.
    let readGate: Promise<void> | undefined
    const slowReads = new Proxy(storage, {
      get(target, property, receiver) {
        if (property === 'get') {
          return async (id: string) => {
            const row = await target.get(id)
            await readGate
            return row
          }
        }
        const value: unknown = Reflect.get(target, property, receiver)
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
      },
    })
    const clock = new ManualClock(T0)
    const engine = new Engine({ storage: slowReads, tasks: { job }, clock })
    const { execution } = await engine.enqueue('job', null)

    const gate = deferred()
    readGate = gate.promise
    let result: { status: string } | undefined
    const waiting = engine
      .waitFor(execution.id, { timeoutMs: 60_000, pollMs: 60_000 })
      .then((e) => (result = e))
    await turn() // waitFor has read the row (queued) and is waiting for the read to return
    readGate = undefined
    await engine.executor.tick() // finishes while that read is in flight
    gate.resolve()
    for (let i = 0; i < 5; i++) await turn()
    expect(result?.status).toBe('completed')
    await waiting
  })

  it('leaves no abort listener behind on its signal', async () => {
    const job = task({ id: 'job', input: z.null(), run: () => 'done' })
    const { engine, clock } = setup({ job })
    const { execution } = await engine.enqueue('job', null)
    const controller = new AbortController()
    const waiting = engine.waitFor(execution.id, {
      timeoutMs: 60_000,
      pollMs: 100,
      signal: controller.signal,
    })
    for (let i = 0; i < 30; i++) {
      clock.advance(100)
      await turn()
    }
    expect(getEventListeners(controller.signal, 'abort').length).toBeLessThanOrEqual(1)
    controller.abort()
    expect(await waiting).toMatchObject({ status: 'queued' })
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })
})

describe('get with asOf', () => {
  it('rebuilds the execution as it was at each moment from its history', async () => {
    let calls = 0
    const flaky = task({
      id: 'flaky',
      input: z.null(),
      retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 1, maxMs: 1000 } },
      run: () => {
        if (++calls === 1) throw new Error('first try fails')
        return 'ok'
      },
    })
    const { engine, clock } = setup({ flaky })
    const { execution } = await engine.enqueue('flaky', null)
    clock.advance(10)
    await engine.executor.tick() // attempt 1 fails at T0+10, retry due at T0+10+999
    clock.advance(2_000)
    await engine.executor.tick() // attempt 2 completes at T0+2010

    await expect(engine.get(execution.id, { asOf: T0 - 1 })).rejects.toBeInstanceOf(NotFoundError)
    expect(await engine.get(execution.id, { asOf: T0 })).toMatchObject({
      status: 'queued',
      runs: 0,
      attempt: 1,
      failures: 0,
      error: null,
      output: undefined,
      startedAt: null,
    })
    expect(await engine.get(execution.id, { asOf: new Date(T0 + 10) })).toMatchObject({
      status: 'queued',
      runs: 1,
      attempt: 2,
      failures: 1,
      error: { message: 'first try fails' },
      startedAt: T0 + 10,
      finishedAt: null,
    })
    expect(await engine.get(execution.id, { asOf: T0 + 5_000 })).toMatchObject({
      status: 'completed',
      runs: 2,
      attempt: 2,
      failures: 1,
      output: 'ok',
      error: null,
      finishedAt: T0 + 2_010,
    })
    expect(await engine.get(execution.id, { asOf: T0 + 5_000 })).toEqual(await engine.get(execution.id))
    await expect(engine.get(execution.id, { asOf: Number.NaN })).rejects.toBeInstanceOf(ValidationError)
  })
})

describe('get with asOf across a rerun and a cancel', () => {
  it('each moment shows its own error and failures: a rerun starts over, a cancel keeps its error', async () => {
    let calls = 0
    const once = task({
      id: 'once',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: () => {
        throw new TerminalError(`run ${++calls} failed`)
      },
    })
    const { engine, clock } = setup({ once })
    const { execution } = await engine.enqueue('once', null)
    await engine.executor.tick() // fails at T0: "run 1 failed"
    clock.advance(100)
    await engine.retry(execution.id) // rerun at T0+100
    clock.advance(100)
    await engine.executor.tick() // fails at T0+200: "run 2 failed"

    expect(await engine.get(execution.id, { asOf: T0 + 50 })).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { message: 'run 1 failed' },
    })
    expect(await engine.get(execution.id, { asOf: T0 + 150 })).toMatchObject({
      status: 'queued',
      failures: 0,
      error: null,
      finishedAt: null,
    })
    expect(await engine.get(execution.id, { asOf: T0 + 250 })).toMatchObject({
      status: 'failed',
      failures: 1,
      error: { message: 'run 2 failed' },
    })

    clock.advance(100)
    await engine.retry(execution.id) // rerun at T0+300, then cancelled at T0+400
    clock.advance(100)
    await engine.cancel(execution.id)
    clock.advance(100)
    expect(await engine.get(execution.id, { asOf: T0 + 450 })).toMatchObject({
      status: 'cancelled',
      error: { code: 'CANCELLED' },
    })
    expect(await engine.get(execution.id, { asOf: T0 + 250 })).toMatchObject({
      error: { message: 'run 2 failed' },
    })
  })
})

describe('robustness (from review)', () => {
  it('a retryAfterMs that is not a finite number falls back to the back-off, and others in the batch are unaffected', async () => {
    const bad = task({
      id: 'bad',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 1000, factor: 1, maxMs: 1000 } },
      run: () => {
        throw new RetryableError('rate limited', { retryAfterMs: Number('not a number') })
      },
    })
    const good = task({ id: 'good', input: z.null(), retry: { maxAttempts: 1 }, run: () => 'fine' })
    const { engine, clock } = setup({ bad, good })
    const a = await engine.enqueue('bad', null)
    const b = await engine.enqueue('good', null)
    expect(await engine.executor.tick()).toEqual({ claimed: 2 })
    expect(await engine.get(b.execution.id)).toMatchObject({ status: 'completed', output: 'fine' })
    const retried = await engine.get(a.execution.id)
    expect(retried).toMatchObject({ status: 'queued', failures: 1 })
    // random 0.999 × ceiling 1000 → 999 ms after the failure
    expect(retried.runAt).toBe(clock.now() + 999)
    expect((await engine.history(a.execution.id)).items).toHaveLength(3)
  })

  it('a wait timeoutMs that is not a finite number is a TypeError, not a poisoned write', async () => {
    const waiter = task({
      id: 'waiter',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: (_input, ctx) => ctx.waitForSignal('s', { timeoutMs: Number.NaN }),
    })
    const { engine } = setup({ waiter })
    const { execution } = await engine.enqueue('waiter', null)
    await engine.executor.tick()
    const failed = await engine.get(execution.id)
    expect(failed).toMatchObject({ status: 'failed', error: { name: 'TypeError' } })
    expect(failed.error?.message).toMatch(/timeoutMs must be a finite number/)
  })

  it('deadlines expire even while every slot is busy (the safety-net poll)', async () => {
    const blocker = deferred()
    const busy = task({ id: 'busy', input: z.null(), timeoutMs: 3_600_000, run: () => blocker.promise })
    const sleeper = task({
      id: 'sleeper',
      input: z.null(),
      run: (_input, ctx) => ctx.sleep('nap', 3_600_000),
    })
    const { engine, clock } = setup({ busy, sleeper }, { concurrency: 1, pollIntervalMs: 1_000 })
    const { execution: nap } = await engine.enqueue('sleeper', null, { deadlineMs: 5_000 })
    await engine.executor.tick() // parks the sleeper
    expect((await engine.get(nap.id)).status).toBe('waiting')
    engine.start()
    await engine.enqueue('busy', null)
    await new Promise((resolve) => setTimeout(resolve, 50)) // the busy task takes the only slot
    expect(engine.executor.activeAttempts).toBe(1)
    for (let i = 0; i < 6; i++) {
      clock.advance(1_000)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(await engine.get(nap.id)).toMatchObject({
      status: 'timed_out',
      error: { code: 'DEADLINE_EXCEEDED' },
    })
    blocker.resolve()
  })

  it('a failing safety-net pass while every slot is busy is logged, not swallowed', async () => {
    const blocker = deferred()
    const busy = task({ id: 'busy', input: z.null(), timeoutMs: 3_600_000, run: () => blocker.promise })
    const errors: { obj: Record<string, unknown>; msg: string | undefined }[] = []
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (obj, msg) => errors.push({ obj, msg }),
      child: () => logger,
    }
    const { engine, storage, clock } = setup({ busy }, { concurrency: 1, pollIntervalMs: 1_000, logger })
    engine.start()
    await engine.enqueue('busy', null)
    await new Promise((resolve) => setTimeout(resolve, 50)) // the busy task takes the only slot
    expect(engine.executor.activeAttempts).toBe(1)
    // The housekeeping that wakes due waiters and expires deadlines fails (the disk, say).
    storage.housekeep = () => Promise.reject(new Error('disk I/O error'))
    clock.advance(1_000)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(errors).toEqual([
      expect.objectContaining({
        obj: { err: expect.objectContaining({ message: 'disk I/O error' }) as unknown },
      }),
    ])
    blocker.resolve()
  })

  it('housekeeping another process is doing (busy) is tried again about 100 ms later, not spun', async () => {
    const napper = task({ id: 'napper', input: z.null(), run: (_input, ctx) => ctx.sleep('nap', 5_000) })
    const { engine, storage, clock } = setup({ napper }, { pollIntervalMs: 3_600_000 })
    const housekeep = storage.housekeep.bind(storage)
    let calls = 0
    let busyLeft = 0
    storage.housekeep = (now, limit) => {
      calls++
      if (busyLeft === 0) return housekeep(now, limit)
      busyLeft--
      return Promise.resolve({ changed: [], more: false, busy: true })
    }
    const { execution } = await engine.enqueue('napper', null)
    await engine.executor.tick() // parks until T0 + 5 s
    expect((await engine.get(execution.id)).status).toBe('waiting')
    engine.start()
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20))
    await settle()
    busyLeft = 2
    calls = 0
    clock.advance(5_000) // the due timer fires: another process holds the housekeeping
    await settle()
    expect(calls).toBe(1)
    clock.advance(99)
    await settle()
    expect(calls).toBe(1)
    clock.advance(1) // busy again
    await settle()
    expect(calls).toBe(2)
    expect((await engine.get(execution.id)).status).toBe('waiting')
    clock.advance(100) // done: woken, claimed, completed
    await settle()
    expect(calls).toBe(3)
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', runs: 2 })
  })

  it('cancelling a finished parent leaves the child it spawned alone', async () => {
    const child = task({ id: 'child', input: z.null(), run: (_input, ctx) => ctx.sleep('long', 3_600_000) })
    const parent = task({
      id: 'parent',
      input: z.null(),
      run: (_input, ctx) => ctx.spawn('kid', child, null),
    })
    const { engine } = setup({ child, parent })
    const { execution } = await engine.enqueue('parent', null)
    await engine.executor.tick()
    await engine.executor.tick()
    const [kid] = (await engine.list({ parentId: execution.id })).items
    expect((await engine.get(execution.id)).status).toBe('completed')
    expect(kid?.status).toBe('waiting')
    await expect(engine.cancel(execution.id)).rejects.toBeInstanceOf(ConflictError)
    expect((await engine.get(kid!.id)).status).toBe('waiting')
  })
})
