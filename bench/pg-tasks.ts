/**
 * The tasks of the PostgreSQL benchmark's server processes (RATCHET_TASKS of each replica).
 * `noop` returns where and when it started: the replica's name (RATCHET_BENCH_REPLICA) and
 * `process.hrtime.bigint()` (CLOCK_MONOTONIC, the same clock in every process of the machine),
 * so the benchmark process can measure enqueue→start across processes.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { z } from 'zod'
import { task } from '@ratchet/core'

const replica = process.env.RATCHET_BENCH_REPLICA ?? String(process.pid)

export const noop = task({
  id: 'noop',
  input: z.object({ i: z.number().int() }),
  retry: { maxAttempts: 1 },
  run: () => ({ replica, startedNs: String(process.hrtime.bigint()) }),
})

/** Holds a slot of its replica for `ms` (or until the run is aborted). */
export const hold = task({
  id: 'hold',
  input: z.object({ ms: z.number().int() }),
  retry: { maxAttempts: 1 },
  timeoutMs: 3_600_000,
  run: async ({ ms }, ctx) => {
    await delay(ms, undefined, { signal: ctx.signal }).catch(() => {})
    return replica
  },
})

export const tasks = { noop, hold }
