/**
 * `debounce`: a burst of enqueues with one key collapses into one execution that runs once,
 * with the last input, when the key has been quiet for `periodMs` (or at `maxWaitMs` after the
 * burst's first enqueue). Driven with the manual clock and `executor.tick()`, on SQLite.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { task, ValidationError } from '@ratchet/core'
import { openEngine, T0 } from './open-engine'

const ran: unknown[] = []
const sync = task({
  id: 'sync',
  input: z.object({ account: z.string(), edit: z.number() }),
  debounce: { key: ({ account }) => account, periodMs: 1_000, maxWaitMs: 5_000 },
  run: (input) => {
    ran.push(input)
    return input.edit
  },
})

async function drain(engine: ReturnType<typeof openEngine>['engine']): Promise<number> {
  let claimed = 0
  for (let n = 1; n > 0; claimed += n) n = (await engine.executor.tick()).claimed
  return claimed
}

describe('debounce', () => {
  it('100 enqueues in a burst with one key: one execution, run once with the last input when the key is quiet', async () => {
    ran.length = 0
    const { engine, clock } = openEngine({ sync })
    const results = []
    for (let edit = 1; edit <= 100; edit++) {
      results.push(await engine.enqueue(sync, { account: 'acme', edit }))
      clock.advance(10)
    }
    const [first] = results
    expect(new Set(results.map((r) => r.execution.id))).toEqual(new Set([first!.execution.id]))
    expect(results.map((r) => r.created)).toEqual([true, ...Array<boolean>(99).fill(false)])
    // Another key is its own execution.
    const other = await engine.enqueue(sync, { account: 'globex', edit: 1 })
    expect(other.created).toBe(true)
    // The last enqueue was at T0 + 990: nothing is due before T0 + 1990.
    clock.advance(T0 + 1_989 - clock.now())
    expect(await drain(engine)).toBe(0)
    clock.advance(1)
    expect(await drain(engine)).toBe(1)
    expect(ran).toEqual([{ account: 'acme', edit: 100 }])
    // globex, enqueued at T0 + 1000.
    clock.advance(10)
    expect(await drain(engine)).toBe(1)
    expect(ran.at(-1)).toEqual({ account: 'globex', edit: 1 })
    expect(await engine.get(first!.execution.id)).toMatchObject({ status: 'completed', output: 100 })
    // Started: the next enqueue of the key is a new execution.
    const after = await engine.enqueue(sync, { account: 'acme', edit: 101 })
    expect(after.created).toBe(true)
    expect(after.execution.id).not.toBe(first!.execution.id)
  })

  it('a key that never goes quiet runs at maxWaitMs after the first enqueue', async () => {
    ran.length = 0
    const { engine, clock } = openEngine({ sync })
    const { execution } = await engine.enqueue(sync, { account: 'busy', edit: 0 })
    for (let edit = 1; edit <= 60; edit++) {
      clock.advance(100)
      await engine.enqueue(sync, { account: 'busy', edit })
      await drain(engine)
    }
    // 60 enqueues 100 ms apart, never 1 s of quiet: it ran at T0 + 5000, with edit 50.
    expect(ran).toEqual([{ account: 'busy', edit: 50 }])
    expect((await engine.get(execution.id)).startedAt).toBe(T0 + 5_000)
  })

  it('refuses what a debounce cannot honour: an idempotency key, a delay, a start as a child, a key that throws', async () => {
    const { engine } = openEngine({ sync })
    for (const [options, field] of [
      [{ idempotencyKey: 'k' }, 'idempotencyKey'],
      [{ delayMs: 5 }, 'delayMs'],
      [{ runAt: new Date(T0 + 5) }, 'runAt'],
      [{ deadlineMs: 60_000 }, 'deadlineMs'],
    ] as const) {
      const error: unknown = await engine
        .enqueue(sync, { account: 'a', edit: 1 }, options)
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).issues[0]!.path).toEqual(['options', field])
    }
    const parent = task({
      id: 'parent',
      input: z.null(),
      retry: { maxAttempts: 1 },
      run: (_input, ctx) => ctx.child('sync', sync, { account: 'a', edit: 1 }),
    })
    const thrower = task({
      id: 'thrower',
      input: z.object({}),
      debounce: {
        key: () => {
          throw new Error('no account')
        },
        periodMs: 10,
      },
      run: () => null,
    })
    const t = openEngine({ sync, parent, thrower })
    await expect(t.engine.enqueue(thrower, {})).rejects.toThrow(
      'task "thrower" is debounced: its debounce key function threw: no account',
    )
    const { execution } = await t.engine.enqueue(parent, null)
    await drain(t.engine)
    expect(await t.engine.get(execution.id)).toMatchObject({
      status: 'failed',
      error: { message: 'task "sync" is debounced: it cannot be started as a child; enqueue it' },
    })
    expect((await engine.list()).items).toEqual([])
  })

  it('bad options are refused when the task is defined, naming the task and the option', () => {
    const base = { id: 'd', input: z.object({ k: z.string() }), run: () => null }
    const key = ({ k }: { k: string }) => k
    expect(() => task({ ...base, debounce: { key, periodMs: 0 } })).toThrow(
      'task "d": debounce.periodMs must be an integer from 1 to 86400000, got 0',
    )
    expect(() => task({ ...base, debounce: { key, periodMs: 1_000, maxWaitMs: 500 } })).toThrow(
      'task "d": debounce.maxWaitMs must be an integer from periodMs (1000) to 86400000, got 500',
    )
    expect(() => task({ ...base, debounce: { key: 'k' as never, periodMs: 1_000 } })).toThrow(
      'task "d": debounce.key must be a function of the input that returns a string',
    )
    expect(() => task({ ...base, deadlineMs: 5_000, debounce: { key, periodMs: 1_000 } })).toThrow(
      'task "d": deadlineMs of a debounced task must be more than its debounce.maxWaitMs (the latest start), got 5000 without a maxWaitMs',
    )
    expect(() =>
      task({ ...base, deadlineMs: 5_000, debounce: { key, periodMs: 1_000, maxWaitMs: 5_000 } }),
    ).toThrow('got 5000 with maxWaitMs 5000')
    expect(
      task({ ...base, deadlineMs: 5_001, debounce: { key, periodMs: 1_000, maxWaitMs: 5_000 } }).deadlineMs,
    ).toBe(5_001)
    expect(() => task({ ...base, on: 'thing.happened', debounce: { key, periodMs: 1_000 } })).toThrow(
      'task "d": a debounced task cannot be started by events (on); enqueue it instead',
    )
  })
})
