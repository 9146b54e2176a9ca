/**
 * A deadline that expires a waiting or queued execution is a change like any other: it reaches
 * the change feed (and so every watch and wait in this process) in the pass that expires it,
 * not at the next poll.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { task, type ExecutionChange } from '@ratchet/core'
import { openEngine } from './open-engine'

const HOUR = 3_600_000

const gate = task({
  id: 'gate',
  input: z.null(),
  run: (_input, ctx) => ctx.waitForSignal<string>('go'),
})

/** Lets the work the last step started (promise callbacks, deferred engine work) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('deadline expiries reach the change feed', () => {
  it('a waiting and a queued execution past their deadline: timed_out in the same pass', async () => {
    const { engine, clock } = openEngine({ gate })
    const { execution: waiting } = await engine.enqueue(gate, null, { deadlineMs: 1_000 })
    await engine.executor.tick()
    expect((await engine.get(waiting.id)).status).toBe('waiting')
    // Not due before its deadline: it stays queued until then.
    const { execution: queued } = await engine.enqueue(gate, null, { deadlineMs: 1_000, delayMs: HOUR })

    const seen: ExecutionChange[] = []
    engine.changes.subscribeAll((change) => seen.push(change))
    // Waiters that would only look again after an hour.
    const waits = [waiting, queued].map((e) => engine.waitFor(e.id, { timeoutMs: 2 * HOUR, pollMs: HOUR }))
    let ended = 0
    for (const w of waits) void w.then(() => ended++)

    clock.advance(1_000)
    expect(await engine.executor.tick()).toEqual({ claimed: 0 })
    expect(seen.filter((c) => c.status === 'timed_out')).toEqual(
      expect.arrayContaining([
        { id: waiting.id, taskId: 'gate', status: 'timed_out', run: 1, at: clock.now() },
        { id: queued.id, taskId: 'gate', status: 'timed_out', run: 0, at: clock.now() },
      ]),
    )
    // The clock has not moved since: only the change feed can have ended the waits.
    await settle()
    expect(ended).toBe(2)
    for (const done of await Promise.all(waits)) expect(done.status).toBe('timed_out')
  })

  it('a waiter that came due is sent to the change feed as queued', async () => {
    const napper = task({
      id: 'napper',
      input: z.null(),
      run: async (_input, ctx) => {
        await ctx.sleep('nap', HOUR)
        return 'rested'
      },
    })
    const { engine, clock } = openEngine({ napper }, { concurrency: 1 })
    const { execution } = await engine.enqueue(napper, null)
    await engine.executor.tick()
    expect((await engine.get(execution.id)).status).toBe('waiting')
    const seen: ExecutionChange[] = []
    engine.changes.subscribe(execution.id, (change) => seen.push(change))
    clock.advance(HOUR)
    await engine.executor.tick()
    expect(seen.map((c) => c.status).slice(0, 2)).toEqual(['queued', 'running'])
  })
})
