/**
 * The storage becomes unreachable under a running engine (real SQLite file, real clock): every
 * call of the executor's throws `StorageUnavailableError`, as the PostgreSQL adapter's do when
 * the database goes away. Nothing is lost or failed by it: results and step records stay
 * queued and are written when it is back, claims back off instead of failing at full speed,
 * and the log has one error line for the outage and one info line when it ends.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  Engine,
  StorageUnavailableError,
  task,
  type Logger,
  type Storage,
  type StorageNotifications,
  type TaskMap,
} from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'

interface Line {
  level: string
  obj: Record<string, unknown>
  msg: string | undefined
}

/** A logger that keeps every line. */
function capturingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = []
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
    void lines.push({ level, obj, msg })
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  }
  return { logger, lines }
}

/**
 * A real SQLite storage behind a switch: while `down`, every method (and `once` ones, once)
 * rejects with StorageUnavailableError before reaching the database; a `lostReply` one runs,
 * then rejects so, once (its commit done, the reply lost with the connection). Counts the
 * calls made.
 */
function switchable(storage: Storage) {
  const state = {
    down: false,
    once: new Set<string>(),
    lostReply: new Set<string>(),
    /** Sees every call's arguments first; an Error it throws is the call's outcome. */
    intercept: undefined as ((method: string, args: unknown[]) => void) | undefined,
    calls: new Map<string, number>(),
    /** Listeners given to `notifications.onWake` (the PostgreSQL adapter's LISTEN, here by hand). */
    wakeListeners: new Set<() => void>(),
  }
  const notifications: StorageNotifications = {
    onWake: (listener) => {
      state.wakeListeners.add(listener)
      return () => state.wakeListeners.delete(listener)
    },
    onChange: () => () => {},
    onConnection: () => () => {},
  }
  const proxy = new Proxy(storage, {
    get(target, key, receiver) {
      if (key === 'notifications') return notifications
      const value: unknown = Reflect.get(target, key, receiver)
      if (typeof value !== 'function' || typeof key !== 'string') return value
      return (...args: unknown[]) => {
        state.calls.set(key, (state.calls.get(key) ?? 0) + 1)
        const unavailable = () => new StorageUnavailableError(undefined, { cause: new Error('ECONNREFUSED') })
        if (state.down || state.once.delete(key)) return Promise.reject(unavailable())
        try {
          state.intercept?.(key, args)
        } catch (error) {
          return Promise.reject(error instanceof Error ? error : new Error(String(error)))
        }
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        if (state.lostReply.delete(key))
          return Promise.resolve(result).then(() => Promise.reject(unavailable()))
        return result
      }
    },
  })
  return { storage: proxy, state }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function open(tasks: TaskMap, options: { pollIntervalMs?: number; leaseMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-outage-'))
  const sqlite = openSqliteStorage({ filename: join(dir, 'ratchet.db') })
  const { storage, state } = switchable(sqlite)
  const { logger, lines } = capturingLogger()
  const engine = new Engine({
    storage,
    tasks,
    logger,
    concurrency: 20,
    pollIntervalMs: options.pollIntervalMs ?? 60_000,
    leaseMs: options.leaseMs ?? 60_000,
  })
  cleanups.push(async () => {
    state.down = false
    await engine.stop({ drainMs: 1000 })
    await sqlite.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { engine, sqlite, state, lines }
}

async function until<T>(
  read: () => Promise<T> | T,
  ok: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (ok(value)) return value
    if (Date.now() > end) throw new Error(`timed out; last value ${JSON.stringify(value)}`)
    await delay(20)
  }
}

describe('the storage becomes unreachable under a running engine', () => {
  it('queued step records and results are written when it is back: every execution completes, no attempt is used up, each step ran once', async () => {
    const ran = new Map<string, number>()
    let gate: (() => void) | undefined
    const gated = new Promise<void>((resolve) => (gate = resolve))
    const worker = task({
      id: 'worker',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 1 },
      run: async ({ i }, ctx) => {
        const a = await ctx.step('a', () => {
          ran.set(`${i} a`, (ran.get(`${i} a`) ?? 0) + 1)
          return i
        })
        await gated
        const b = await ctx.step('b', () => {
          ran.set(`${i} b`, (ran.get(`${i} b`) ?? 0) + 1)
          return a * 2
        })
        return b + 1
      },
    })
    const { engine, state, lines } = open({ worker })
    engine.start()
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push((await engine.enqueue(worker, { i })).execution.id)
    // Every run has written step "a" and waits at the gate.
    await until(
      () => ran.size,
      (n) => n === 10,
    )
    await delay(50)

    state.down = true
    gate!() // step "b" and the results are made while the storage is down
    await delay(1_500)
    const whileDown = lines.filter((l) => l.level === 'error')
    state.down = false

    const finished = await until(
      () => Promise.all(ids.map((id) => engine.get(id))),
      (rows) => rows.every((r) => r.status === 'completed'),
    )
    finished.forEach((row, i) =>
      expect(row).toMatchObject({ status: 'completed', output: 2 * i + 1, failures: 0 }),
    )
    for (let i = 0; i < 10; i++) {
      expect(ran.get(`${i} a`)).toBe(1)
      expect(ran.get(`${i} b`)).toBe(1)
    }
    // One error line for the whole outage, then one line when it ended.
    expect(whileDown).toHaveLength(1)
    expect(whileDown[0]!.msg).toMatch(/storage unreachable/)
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1)
    const back = lines.filter((l) => l.msg?.startsWith('storage reachable again'))
    expect(back).toHaveLength(1)
    expect(back[0]!.obj.failedCalls).toBeGreaterThanOrEqual(1)
    expect(engine.executor.storageFailure).toBeUndefined()
  })

  it('claims back off while it is down (not one per wake-up), and resume on their own when it is back, long before the poll', async () => {
    const echo = task({ id: 'echo', input: z.number(), run: (n) => n })
    // A poll interval of a minute: only the back-off's retries can notice the storage is back.
    const { engine, sqlite, state } = open({ echo }, { pollIntervalMs: 60_000 })
    engine.start()
    await engine.enqueue(echo, 0)
    await until(() => engine.executor.activeAttempts === 0 && (state.calls.get('claim') ?? 0) > 0, Boolean)

    state.down = true
    // Each pass that finds the storage down tries housekeeping or a claim first, then backs off.
    const passes = () => (state.calls.get('claim') ?? 0) + (state.calls.get('housekeep') ?? 0)
    const before = passes()
    // Enqueued straight into the database (another replica), then a flood of wake-ups.
    const { execution } = await new Engine({ storage: sqlite, tasks: { echo } }).enqueue(echo, 7)
    for (let i = 0; i < 200; i++) {
      engine.executor.wake()
      await delay(5)
    }
    const duringOutage = passes() - before
    // 100 ms doubling over ~1 s of wake-ups: a handful of tries, far fewer than the wake-ups.
    expect(duringOutage).toBeGreaterThanOrEqual(1)
    expect(duringOutage).toBeLessThan(20)
    expect(engine.executor.storageFailure?.operation).toMatch(/claim|housekeep/)

    state.down = false
    const done = await until(
      () => engine.get(execution.id),
      (row) => row.status === 'completed',
      15_000,
    )
    expect(done).toMatchObject({ output: 7, failures: 0 })
  })

  it('a run whose own read finds the storage unreachable is released, not failed: its attempts are not used up', async () => {
    const napper = task({
      id: 'napper',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        await ctx.sleep('nap', 1_500) // durable: the next run replays (loads its run state)
        return 'rested'
      },
    })
    const { engine, state, lines } = open({ napper }, { pollIntervalMs: 200 })
    engine.start()
    const { execution } = await engine.enqueue(napper, null)
    await until(
      () => engine.get(execution.id),
      (row) => row.status === 'waiting',
    )
    state.once.add('loadRunState') // the second run's replay fails to read
    const done = await until(
      () => engine.get(execution.id),
      (row) => row.status === 'completed',
    )
    expect(done).toMatchObject({ output: 'rested', failures: 0, runs: 3 })
    expect(state.once.size).toBe(0)
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContain(
      'attempt released: the storage was unreachable',
    )
  })

  it('a step record committed by a call whose reply was lost is found written on the retry: the run is released to replay it, its attempts not used up', async () => {
    let bodies = 0
    const twoSteps = task({
      id: 'two-steps',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        const a = await ctx.step('a', () => ++bodies)
        const b = await ctx.step('b', () => a + 10)
        return b
      },
    })
    const { engine, state, lines } = open({ twoSteps })
    state.lostReply.add('recordSteps') // step "a" is committed, but its call fails as an outage
    engine.start()
    const { execution } = await engine.enqueue(twoSteps, null)
    const done = await until(
      () => engine.get(execution.id),
      (row) => row.status === 'completed',
    )
    expect(done).toMatchObject({ output: 11, failures: 0, runs: 2 })
    expect(bodies).toBe(1)
    expect(state.lostReply.size).toBe(0)
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContain(
      'attempt released: the storage was unreachable',
    )
    expect(lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      expect.stringContaining('unreachable'),
    ])
  })

  it('records written one at a time after a refused batch: an outage partway leaves the rest queued, written when it is back', async () => {
    const ran = new Map<number, number>()
    let gate!: () => void
    const gated = new Promise<void>((resolve) => (gate = resolve))
    const worker = task({
      id: 'worker',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 1 },
      run: async ({ i }, ctx) => {
        await gated
        const a = await ctx.step(i === 3 ? 'poison' : 'a', () => {
          ran.set(i, (ran.get(i) ?? 0) + 1)
          return i
        })
        return ctx.step('b', () => a * 2)
      },
    })
    const { engine, state } = open({ worker })
    const batches: number[] = []
    let singles = 0
    state.intercept = (method, args) => {
      if (method !== 'recordSteps') return
      const writes = args[0] as { step: { name: string } }[]
      batches.push(writes.length)
      // The storage refuses the "poison" record (a constraint, say): any call carrying it fails.
      if (writes.some((w) => w.step.name === 'poison')) throw new Error('CHECK constraint failed')
      // Written one at a time, the third single record meets an outage.
      if (writes.length === 1 && batches.some((n) => n > 1) && ++singles === 3)
        throw new StorageUnavailableError(undefined, { cause: new Error('ECONNRESET') })
    }
    engine.start()
    const ids: string[] = []
    for (let i = 0; i < 8; i++) ids.push((await engine.enqueue(worker, { i })).execution.id)
    await until(
      () => Promise.all(ids.map((id) => engine.get(id))),
      (rows) => rows.every((r) => r.status === 'running'),
    )
    gate() // every run makes its first record at once: one batch
    const rows = await until(
      () => Promise.all(ids.map((id) => engine.get(id))),
      (all) => all.every((r) => r.status === 'completed' || r.status === 'failed'),
    )
    // The batch of eight was refused, then written one at a time until the outage.
    expect(batches[0]).toBe(8)
    expect(singles).toBeGreaterThanOrEqual(3)
    rows.forEach((row, i) =>
      i === 3
        ? expect(row).toMatchObject({ status: 'failed', error: { message: 'CHECK constraint failed' } })
        : expect(row).toMatchObject({ status: 'completed', output: 2 * i, failures: 0, runs: 1 }),
    )
    expect([...ran.values()]).toEqual(Array(8).fill(1))
  })

  it('a backlog of more step records than one write takes, made during an outage, is written when it is back: each step ran once, no record lost', async () => {
    const ran = new Map<string, number>()
    let gate!: () => void
    const gated = new Promise<void>((resolve) => (gate = resolve))
    const wide = task({
      id: 'wide',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 1 },
      run: async ({ i }, ctx) => {
        await gated
        const values = await ctx.all(
          Array.from({ length: 120 }, (_, k) =>
            ctx.step(`s${k}`, () => {
              ran.set(`${i}:${k}`, (ran.get(`${i}:${k}`) ?? 0) + 1)
              return k
            }),
          ),
        )
        return values.reduce((sum, v) => sum + v, i)
      },
    })
    const { engine, state } = open({ wide })
    engine.start()
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await engine.enqueue(wide, { i })).execution.id)
    await until(
      () => Promise.all(ids.map((id) => engine.get(id))),
      (rows) => rows.every((r) => r.status === 'running'),
    )
    const writes: number[] = []
    state.intercept = (method, args) => {
      if (method === 'recordSteps' && !state.down) writes.push((args[0] as unknown[]).length)
    }
    state.down = true
    gate() // 360 records are made while the storage is down
    await until(
      () => ran.size,
      (n) => n === 360,
    )
    await delay(300)
    state.down = false
    const rows = await until(
      () => Promise.all(ids.map((id) => engine.get(id))),
      (all) => all.every((r) => r.status === 'completed'),
    )
    rows.forEach((row, i) => expect(row).toMatchObject({ output: i + 7140, failures: 0, runs: 1 }))
    expect([...ran.values()].every((n) => n === 1)).toBe(true)
    // More than one write was needed (256 records at most each), and none was lost.
    expect(writes.length).toBeGreaterThanOrEqual(2)
    expect(writes.reduce((a, b) => a + b, 0)).toBe(360)
  })

  it('a run whose timeout passes while its step record cannot be written is released, not timed out: the record lands first, the next run replays it', async () => {
    let gate!: () => void
    const gated = new Promise<void>((resolve) => (gate = resolve))
    let bodies = 0
    const slowWrite = task({
      id: 'slow-write',
      input: z.null(),
      timeoutMs: 500,
      retry: { maxAttempts: 1 },
      run: async (_input, ctx) => {
        if (bodies === 0) await gated
        return ctx.step('a', () => ++bodies)
      },
    })
    const { engine, state, lines } = open({ slowWrite })
    engine.start()
    const { execution } = await engine.enqueue(slowWrite, null)
    await until(
      () => engine.get(execution.id),
      (row) => row.status === 'running',
    )
    state.down = true
    gate() // step "a" runs; its record cannot be written; the 500 ms timeout passes meanwhile
    await delay(1_200)
    state.down = false
    const done = await until(
      () => engine.get(execution.id),
      (row) => row.status === 'completed',
    )
    expect(done).toMatchObject({ output: 1, failures: 0, runs: 2 })
    expect(bodies).toBe(1)
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContain(
      'attempt released: its timeout passed while the storage was unreachable',
    )
  })

  it("a run's own error with the storage-unavailable code (another server's client, say) is retried with back-off like any error, not released again and again", async () => {
    let runs = 0
    const caller = task({
      id: 'caller',
      input: z.null(),
      retry: { maxAttempts: 3, backoff: { initialMs: 50, factor: 1, maxMs: 50 } },
      run: () => {
        runs++
        throw new StorageUnavailableError('the other server is down')
      },
    })
    const { engine } = open({ caller }, { pollIntervalMs: 200 })
    engine.start()
    const { execution } = await engine.enqueue(caller, null)
    const done = await until(
      () => engine.get(execution.id),
      (row) => row.status === 'failed',
    )
    expect(done).toMatchObject({ failures: 3 })
    expect(runs).toBe(3)
  })

  it('a stop while the storage is down gives up on the unwritten result one lease later, with a warning; lease recovery then runs the execution again', async () => {
    let gate!: () => void
    const gated = new Promise<void>((resolve) => (gate = resolve))
    let bodies = 0
    const gatedEcho = task({
      id: 'gated-echo',
      input: z.number(),
      run: async (n) => {
        if (++bodies === 1) await gated
        return n
      },
    })
    const { engine, sqlite, state, lines } = open({ gatedEcho }, { leaseMs: 1_000 })
    engine.start()
    const { execution } = await engine.enqueue(gatedEcho, 7)
    await until(
      () => engine.get(execution.id),
      (row) => row.status === 'running',
    )
    state.down = true
    gate() // the run returns; its result cannot be written
    const stopping = engine.stop({ drainMs: 100 })
    const stopped = await Promise.race([stopping.then(() => true), delay(10_000).then(() => false)])
    expect(stopped).toBe(true)
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContainEqual(
      expect.stringMatching(/^stopping with results and step records not written/),
    )

    state.down = false
    const recoverer = new Engine({
      storage: sqlite,
      tasks: { gatedEcho },
      leaseMs: 1_000,
      pollIntervalMs: 200,
    })
    cleanups.push(() => recoverer.stop({ drainMs: 1000 }))
    recoverer.start()
    const done = await until(
      () => recoverer.get(execution.id),
      (row) => row.status === 'completed',
    )
    expect(done).toMatchObject({ output: 7, failures: 0 })
    expect(bodies).toBe(2)
  })

  it("another replica's enqueue is claimed when the storage's wake notice arrives, not at the next poll; a stopped executor stops listening", async () => {
    const echo = task({ id: 'echo', input: z.number(), run: (n) => n })
    const { engine, sqlite, state } = open({ echo }, { pollIntervalMs: 60_000 })
    engine.start()
    expect(state.wakeListeners.size).toBe(1)
    await delay(100) // the first pass found nothing and armed no timer
    const { execution } = await new Engine({ storage: sqlite, tasks: { echo } }).enqueue(echo, 5)
    await delay(200)
    expect((await engine.get(execution.id)).status).toBe('queued')
    for (const wake of state.wakeListeners) wake()
    expect(
      await until(
        () => engine.get(execution.id),
        (row) => row.status === 'completed',
        5_000,
      ),
    ).toMatchObject({ output: 5 })
    await engine.stop()
    expect(state.wakeListeners.size).toBe(0)
  })
})
