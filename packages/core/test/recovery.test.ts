/**
 * Crash recovery and the counters of an execution, on a real SQLite file with a ManualClock.
 *
 * A crashed worker is simulated by claiming through the storage under another owner (its
 * lease then expires, or a single-writer start recovers it): that is exactly what a process
 * that died mid-run leaves behind. The engine that recovers it is the one under test.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ChildExecutionError,
  Engine,
  RecoveriesExhaustedError,
  RetryableError,
  ValidationError,
  deserializeError,
  task,
  type Logger,
  type Storage,
} from '@ratchet/core'
import { T0, openEngine } from './open-engine'

const LEASE_MS = 10_000
const MINUTE = 60_000

/**
 * Claims up to one due execution of `taskId` as a worker that then dies (never settles), after
 * housekeeping as a worker does (waking what came due).
 */
async function claimAndDie(storage: Storage, now: number, taskId: string) {
  await storage.housekeep(now, 100)
  const { claimed: rows } = await storage.claim({
    owner: 'dead-worker',
    now,
    leaseMs: LEASE_MS,
    limit: 1,
    taskIds: [taskId],
  })
  expect(rows).toHaveLength(1)
  return rows[0]!
}

/** A logger that keeps what was logged at warn and error. */
function capturingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = []
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      lines.push({ level, obj, msg })
    }
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  }
  return { logger, lines }
}

describe('a crash is not a failure', () => {
  it('recovers the run of a dead worker after leaseMs without spending an attempt, even the last one', async () => {
    const attempts: number[] = []
    const job = task({
      id: 'job',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: (_input, ctx) => attempts.push(ctx.attempt),
    })
    const { engine, storage, clock } = openEngine({ job }, { leaseMs: LEASE_MS })
    const { execution } = await engine.enqueue('job', null)
    expect((await claimAndDie(storage, clock.now(), 'job')).runs).toBe(1)

    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    clock.advance(LEASE_MS)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 }) // the lease still holds
    clock.advance(1)
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(attempts).toEqual([1])
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 1,
      runs: 2,
      attempt: 1,
      failures: 0,
      maxAttempts: 1,
      // the run that completed ended the streak
      recoveries: 0,
      maxRecoveries: 5,
      error: null,
    })
    const history = (await engine.history(execution.id)).items
    expect(history.map((h) => [h.from, h.to, h.run])).toEqual([
      [null, 'queued', 0],
      ['queued', 'running', 1],
      ['running', 'queued', 1],
      ['queued', 'running', 2],
      ['running', 'completed', 2],
    ])
    expect(history[2]!.detail).toEqual({
      transition: 'recover',
      error: expect.objectContaining({ name: 'LeaseExpiredError', code: 'LEASE_EXPIRED' }) as unknown,
      recoveries: 1,
      progressed: false,
    })
  })

  it('an execution that keeps losing its runs fails with RECOVERIES_EXHAUSTED: its awaited child is cancelled, its parent woken', async () => {
    const blocker = task({
      id: 'blocker',
      input: z.null(),
      run: (_input, ctx) => ctx.waitForSignal('never'),
    })
    // Its first run starts a child and sleeps; every later run dies with its worker.
    const poison = task({
      id: 'poison',
      input: z.null(),
      maxRecoveries: 2,
      run: async (_input, ctx) => {
        await ctx.all([ctx.child('kid', blocker, null), ctx.sleep('nap', MINUTE)])
        return 'never'
      },
    })
    const parent = task({
      id: 'parent',
      input: z.null(),
      run: async (_input, ctx) => {
        try {
          return await ctx.child('poison', poison, null)
        } catch (error) {
          return error instanceof ChildExecutionError ? error.code : 'unexpected'
        }
      },
    })
    const { engine, storage, clock } = openEngine({ parent, poison, blocker }, { leaseMs: LEASE_MS })
    // Another server on the same database that runs none of these tasks: it only recovers.
    const { logger, lines } = capturingLogger()
    const recoverer = new Engine({ storage, tasks: {}, clock, logger, leaseMs: LEASE_MS })
    const { execution } = await engine.enqueue(parent, null)
    await engine.executor.tick() // parent starts poison and parks
    await engine.executor.tick() // poison starts kid, records its sleep and parks
    await engine.executor.tick() // kid waits for a signal
    const [poisonRow] = await storage.list({ parentId: execution.id, limit: 10 })
    const [kidRow] = await storage.list({ parentId: poisonRow!.id, limit: 10 })
    expect([poisonRow?.status, kidRow?.status]).toEqual(['waiting', 'waiting'])

    clock.advance(MINUTE)
    for (const recoveries of [1, 2]) {
      await claimAndDie(storage, clock.now(), 'poison')
      clock.advance(LEASE_MS + 1)
      await recoverer.executor.tick()
      expect(await engine.get(poisonRow!.id)).toMatchObject({ status: 'queued', failures: 0, recoveries })
    }
    await claimAndDie(storage, clock.now(), 'poison')
    clock.advance(LEASE_MS + 1)
    await recoverer.executor.tick()

    const failed = await engine.get(poisonRow!.id)
    expect(failed).toMatchObject({
      status: 'failed',
      runs: 4,
      attempt: 1,
      failures: 1,
      recoveries: 2,
      maxRecoveries: 2,
      error: {
        name: 'RecoveriesExhaustedError',
        code: 'RECOVERIES_EXHAUSTED',
        retryable: false,
        data: { maxRecoveries: 2 },
      },
    })
    expect(failed.error?.message).toMatch(
      /lost 3 runs in a row .* maxRecoveries \(2\) .* raise maxRecoveries/,
    )
    expect(deserializeError(failed.error!)).toBeInstanceOf(RecoveriesExhaustedError)
    expect(
      (await engine.history(poisonRow!.id)).items.filter((h) => h.event === 'status').slice(-2),
    ).toMatchObject([
      { from: 'queued', to: 'running', run: 4 },
      { from: 'running', to: 'failed', run: 4, detail: { transition: 'abandon', recoveries: 2 } },
    ])
    expect(await engine.get(kidRow!.id)).toMatchObject({
      status: 'cancelled',
      error: { code: 'PARENT_ENDED' },
    })
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.obj.recoveries)).toEqual([1, 2])
    expect(lines.filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({
        obj: expect.objectContaining({ executionId: poisonRow!.id, code: 'RECOVERIES_EXHAUSTED' }) as unknown,
      }),
    ])
    // The parent was woken and sees the child's failure.
    expect(await engine.executor.tick()).toEqual({ claimed: 1 })
    expect(await engine.get(execution.id)).toMatchObject({
      status: 'completed',
      output: 'RECOVERIES_EXHAUSTED',
    })
  })

  it('maxRecoveries is a task option with a default, snapshotted at enqueue, and checked', async () => {
    expect(task({ id: 'a', input: z.null(), run: () => null }).maxRecoveries).toBe(5)
    expect(task({ id: 'a', input: z.null(), maxRecoveries: 0, run: () => null }).maxRecoveries).toBe(0)
    for (const bad of [-1, 1.5, 1001, Number.NaN])
      expect(() => task({ id: 'a', input: z.null(), maxRecoveries: bad, run: () => null })).toThrow(
        /task "a": maxRecoveries must be an integer from 0 to 1000, got/,
      )
    const job = task({ id: 'job', input: z.null(), maxRecoveries: 7, run: () => null })
    const { engine, storage } = openEngine({ job })
    expect((await engine.enqueue(job, null)).execution.maxRecoveries).toBe(7)
    expect((await engine.enqueue(job, null, { maxRecoveries: 0 })).execution.maxRecoveries).toBe(0)
    const error = await engine.enqueue(job, null, { maxRecoveries: -1 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([
      { path: ['options', 'maxRecoveries'], message: 'expected an integer from 0 to 1000' },
    ])
    expect(await storage.list({ limit: 10 })).toHaveLength(2)
  })
})

describe('the counters after executions.retry', () => {
  it('failures and recoveries start over, runs keep counting, ctx.attempt is 1 again; get(asOf) shows each moment', async () => {
    const attempts: number[] = []
    let calls = 0
    const flaky = task({
      id: 'flaky',
      input: z.null(),
      retry: { maxAttempts: 2, backoff: { initialMs: 100, factor: 1, maxMs: 100 } },
      run: (_input, ctx) => {
        attempts.push(ctx.attempt)
        calls++
        if (calls <= 2) throw new Error(`failure ${calls}`)
        return ctx.attempt
      },
    })
    const { engine, storage, clock } = openEngine({ flaky }, { leaseMs: LEASE_MS })
    const { execution } = await engine.enqueue(flaky, null)
    const { id } = execution
    const moments: { at: number; label: string }[] = []
    const mark = (label: string) => moments.push({ at: clock.now(), label })

    // Another server on the same database that runs none of these tasks: it only recovers.
    const recoverer = new Engine({ storage, tasks: {}, clock, leaseMs: LEASE_MS })
    await claimAndDie(storage, clock.now(), 'flaky') // run 1 is lost
    clock.advance(LEASE_MS + 1)
    await recoverer.executor.tick()
    mark('recovered')
    clock.advance(10)
    await engine.executor.tick() // run 2 fails (attempt 1)
    mark('failed once')
    clock.advance(100)
    await engine.executor.tick() // run 3 fails (attempt 2): out of attempts
    mark('failed')
    clock.advance(1_000)
    expect(await engine.retry(id)).toMatchObject({
      status: 'queued',
      runs: 3,
      attempt: 1,
      failures: 0,
      recoveries: 0,
      error: null,
    })
    mark('rerun')
    clock.advance(1_000)
    await engine.executor.tick() // run 4: attempt 1 again, completes
    mark('completed')
    expect(attempts).toEqual([1, 2, 1])

    const expected: Record<string, object> = {
      recovered: { status: 'queued', runs: 1, attempt: 1, failures: 0, recoveries: 1, error: null },
      'failed once': { status: 'queued', runs: 2, attempt: 2, failures: 1, recoveries: 0 },
      failed: { status: 'failed', runs: 3, attempt: 2, failures: 2, recoveries: 0 },
      rerun: { status: 'queued', runs: 3, attempt: 1, failures: 0, recoveries: 0, error: null },
      completed: { status: 'completed', runs: 4, attempt: 1, failures: 0, recoveries: 0, output: 1 },
    }
    for (const { at, label } of moments)
      expect({ label, ...(await engine.get(id, { asOf: at })) }).toMatchObject({ label, ...expected[label] })
    expect(await engine.get(id, { asOf: clock.now() })).toEqual(await engine.get(id))
    expect(await engine.get(id)).toMatchObject(expected.completed!)
  })
})

describe('retry timing', () => {
  it('a retry is due after its back-off from when it is written, never before its own history row', async () => {
    // `slowWrite` is written in the same flush as `failsAtOnce`'s retry, first, and takes 250 ms.
    const failsAtOnce = task({
      id: 'fails-at-once',
      input: z.null(),
      run: () => {
        throw new RetryableError('again', { retryAfterMs: 0 })
      },
    })
    const slowWrite = task({
      id: 'slow-write',
      input: z.null(),
      run: (_input, ctx) => ctx.step('s', () => 1),
    })
    const { engine, storage, clock } = openEngine({ failsAtOnce, slowWrite })
    const recordSteps = storage.recordSteps.bind(storage)
    storage.recordSteps = async (writes, now) => {
      clock.advance(250)
      return recordSteps(writes, now)
    }
    const failing = await engine.enqueue(failsAtOnce, null)
    await engine.enqueue(slowWrite, null)
    await engine.executor.tick()
    const retry = (await engine.history(failing.execution.id)).items.find(
      (h) => h.to === 'queued' && h.from === 'running',
    )!
    const { runAt } = retry.detail as { runAt: number }
    // The failure was decided at T0 and written at T0 + 250: due then, not in the past.
    expect(retry.at).toBe(T0 + 250)
    expect(runAt).toBe(retry.at)
    expect((await engine.get(failing.execution.id)).runAt).toBe(runAt)
  })
})
