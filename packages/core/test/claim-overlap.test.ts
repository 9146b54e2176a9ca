/**
 * A finished run frees its slot when its result is queued, not when it is written: the next
 * claim overlaps with the write (on PostgreSQL, two connections at once). The results not yet
 * written are bounded at twice the concurrency. Real SQLite file, real clock; the storage's
 * `settle` is held at a gate to make "while the write is in flight" last.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, expect, it } from 'vitest'
import { z } from 'zod'
import { Engine, task } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

it('claims go on while results are written, up to 2 × concurrency unwritten results; then every execution completes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-overlap-'))
  const storage = openSqliteStorage({ filename: join(dir, 'ratchet.db') })
  let open!: () => void
  const gate = new Promise<void>((resolve) => (open = resolve))
  const settle = storage.settle.bind(storage)
  storage.settle = async (settlements, now) => {
    await gate
    return settle(settlements, now)
  }
  let ran = 0
  const noop = task({
    id: 'noop',
    input: z.number(),
    run: (n) => {
      ran++
      return n
    },
  })
  const engine = new Engine({ storage, tasks: { noop }, concurrency: 2, pollIntervalMs: 60_000 })
  cleanups.push(async () => {
    open()
    await engine.stop({ drainMs: 1000 })
    await storage.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const results = await engine.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ task: noop, input: i })))
  engine.start()

  // The first two results wait at the gate; two more runs are claimed and finish meanwhile;
  // then claiming pauses (4 unwritten = 2 × concurrency).
  for (let stable = 0, last = -1; stable < 10;) {
    await delay(20)
    stable = ran === last ? stable + 1 : 0
    last = ran
  }
  expect(ran).toBe(4)
  expect(engine.executor.activeAttempts).toBe(4)

  open()
  for (const { execution } of results) {
    expect(await engine.waitFor(execution.id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed' })
  }
  expect(ran).toBe(10)
})
