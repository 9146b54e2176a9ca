import { setTimeout as delay } from 'node:timers/promises'
import { z } from 'zod'
import { Engine, TerminalError, fanOut, loop, sequence, task } from '@ratchet/core'
import { sqliteStore, type OpenBenchStore } from './bench-store'
import { round } from './stats'

/** A child that works for 1 ms. */
const work = task({
  id: 'work',
  input: z.object({ i: z.number().int() }),
  run: async ({ i }) => {
    await delay(1)
    return i * 2
  },
})

const CHILDREN = 50

/** 50 children, then a finalize that checks every output. */
const parent = fanOut('parent', {
  input: z.object({ p: z.number().int() }),
  children: () => Array.from({ length: CHILDREN }, (_, i) => ({ task: work, input: { i } })),
  finalize: (results) => {
    const bad = results.findIndex((r, i) => !r.ok || r.value !== i * 2)
    if (bad !== -1) throw new TerminalError(`child ${bad} returned a wrong result`)
    return results.length
  },
})

const inc = task({ id: 'inc', input: z.object({ n: z.number() }), run: ({ n }) => ({ n: n + 1 }) })
const chain = sequence('chain', [inc, inc, inc, inc])

/** Iterations 100 ms apart; done at the 11th, 1 s after the first. */
const poll = loop(
  'poll',
  ({ start }, { iteration }) => (iteration === 11 ? { done: true, value: start } : { done: false }),
  {
    input: z.object({ start: z.number() }),
    maxAttempts: 20,
    sleepMs: 100,
  },
)

export const workflowTasks = { work, parent, inc, chain, poll }

/**
 * 100 parents × 50 children + finalize, 100 sequences of 4, 100 loops of 1 s; all enqueued
 * at once on a fresh SQLite file (or the store `open` gives). Wall time = enqueue → last
 * top-level execution completed.
 */
export async function workflowWorkload(
  concurrency: number,
  shapes: { parents?: number; chains?: number; loops?: number } = {},
  open: OpenBenchStore = sqliteStore,
) {
  const store = await open()
  const { storage } = store
  const engine = new Engine({ storage, tasks: workflowTasks, concurrency, claimBatchSize: concurrency })
  const top = new Set<string>()
  let failed = 0
  const all = new Promise<void>((resolve) => {
    engine.changes.subscribeAll((c) => {
      if (!top.has(c.id)) return
      if (c.status === 'failed' || c.status === 'timed_out' || c.status === 'cancelled') failed++
      if (
        c.status === 'completed' ||
        c.status === 'failed' ||
        c.status === 'timed_out' ||
        c.status === 'cancelled'
      ) {
        top.delete(c.id)
        if (top.size === 0) resolve()
      }
    })
  })
  engine.start()
  const t0 = performance.now()
  const requests = [
    ...Array.from({ length: shapes.parents ?? 100 }, (_, p) => ({ task: 'parent', input: { p } })),
    ...Array.from({ length: shapes.chains ?? 100 }, () => ({ task: 'chain', input: { n: 0 } })),
    ...Array.from({ length: shapes.loops ?? 100 }, () => ({ task: 'poll', input: { start: Date.now() } })),
  ]
  for (const { execution } of await engine.enqueueMany(requests)) top.add(execution.id)
  await all
  const wallMs = performance.now() - t0
  await engine.stop()
  // A fast run that got the wrong answers measures nothing: every workflow must have
  // completed, every fan-out with its 50 checked outputs and every chain with 4.
  const nOf = store.dialect === 'sqlite' ? "json_extract(output, '$.n')" : "(output::json->>'n')::int"
  const wrong = await store.get<{ n: number }>(
    `SELECT count(*) AS n FROM executions
      WHERE parent_id IS NULL AND (status != 'completed'
         OR (task_id = 'parent' AND output != '${CHILDREN}')
         OR (task_id = 'chain' AND ${nOf} != 4))`,
  )
  if (failed > 0 || wrong.n > 0)
    throw new Error(`workflow workload: ${failed} workflows did not complete, ${wrong.n} with a wrong result`)
  const stats = await store.get<{ claims: number; meanWaitMs: number }>(
    `WITH h AS (SELECT execution_id, at, to_status,
                       LAG(at) OVER (PARTITION BY execution_id ORDER BY seq) AS prev_at,
                       LAG(to_status) OVER (PARTITION BY execution_id ORDER BY seq) AS prev_to
                  FROM execution_history WHERE event = 'status')
     SELECT count(*) AS claims, ${store.dialect === 'sqlite' ? 'avg(at - prev_at)' : 'avg(at - prev_at)::float8'} AS "meanWaitMs"
       FROM h WHERE to_status = 'running' AND prev_to = 'queued'`,
  )
  const executions = (await store.get<{ n: number }>('SELECT count(*) AS n FROM executions')).n
  await store.close()
  return {
    wallMs: round(wallMs, 0),
    meanQueueWaitMs: round(stats.meanWaitMs, 1),
    claims: stats.claims,
    executions,
    failed,
  }
}
