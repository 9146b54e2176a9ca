/**
 * The workflow workload written as users write durable functions, without the helpers
 * (`fanOut`, `sequence`, `loop`): a parent that `ctx.all`s 50 `ctx.child` calls and then awaits a
 * finalize child, chains of plain `await ctx.child(...)` hops, and loops of `ctx.sleep` +
 * `ctx.child`. Besides the wall time it measures the hop latency: from a child's body returning
 * to its parent's body running again (the parent's replay starts), for every chain and loop hop.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { z } from 'zod'
import { Engine, TerminalError, task } from '@ratchet/core'
import { sqliteStore, type OpenBenchStore } from './bench-store'
import { round, summarize } from './stats'

const CHILDREN = 50
const HOPS = 4
const LOOP_ITERATIONS = 10
/** Chains run one at a time on the idle engine afterwards, for the hop's own cost. */
const ALONE_CHAINS = 50

/** When a hop's child returned, by the parent waiting for it. */
const childReturnedAt = new Map<string, number>()
let hops: number[] = []

/** Called first in a parent's body: a run that follows a child's return closes a hop. */
function parentRuns(executionId: string): void {
  const returned = childReturnedAt.get(executionId)
  if (returned === undefined) return
  hops.push(performance.now() - returned)
  childReturnedAt.delete(executionId)
}

const work = task({
  id: 'g-work',
  input: z.object({ i: z.number().int() }),
  run: async ({ i }) => {
    await delay(1)
    return i * 2
  },
})

const finalize = task({
  id: 'g-finalize',
  input: z.object({ results: z.array(z.number()) }),
  run: ({ results }) => {
    const bad = results.findIndex((r, i) => r !== i * 2)
    if (bad !== -1) throw new TerminalError(`child ${bad} returned a wrong result`)
    return results.length
  },
})

const fanOutParent = task({
  id: 'g-parent',
  input: z.object({ p: z.number().int() }),
  run: async (_input, ctx) => {
    const results = await ctx.all(
      Array.from({ length: CHILDREN }, (_, i) => ctx.child(`work-${i}`, work, { i })),
    )
    return ctx.child('finalize', finalize, { results })
  },
})

/** A hop: returns n + 1 and notes when, for its parent's hop latency. */
const inc = task({
  id: 'g-inc',
  input: z.object({ n: z.number() }),
  run: ({ n }, ctx) => {
    if (ctx.parentId) childReturnedAt.set(ctx.parentId, performance.now())
    return { n: n + 1 }
  },
})

const chain = task({
  id: 'g-chain',
  input: z.object({ n: z.number() }),
  run: async ({ n }, ctx) => {
    parentRuns(ctx.executionId)
    let value = n
    for (let i = 0; i < HOPS; i++) value = (await ctx.child(`hop-${i}`, inc, { n: value })).n
    return { n: value }
  },
})

const sleepLoop = task({
  id: 'g-loop',
  input: z.object({ n: z.number() }),
  run: async ({ n }, ctx) => {
    parentRuns(ctx.executionId)
    let value = n
    for (let i = 0; i < LOOP_ITERATIONS; i++) {
      await ctx.sleep(`sleep-${i}`, 100)
      value = (await ctx.child(`step-${i}`, inc, { n: value })).n
    }
    return { n: value }
  },
})

export const generalWorkflowTasks = { work, finalize, fanOutParent, inc, chain, sleepLoop }

/**
 * 100 fan-out parents (50 children + finalize), 100 chains of 4 hops, 100 loops of 10 × (100 ms
 * sleep + child), all enqueued at once on a fresh SQLite file (or the store `open` gives), at
 * `concurrency`.
 */
export async function generalWorkflowWorkload(concurrency: number, open: OpenBenchStore = sqliteStore) {
  const store = await open()
  const { storage } = store
  const engine = new Engine({ storage, tasks: generalWorkflowTasks, concurrency })
  hops = []
  childReturnedAt.clear()
  const top = new Set<string>()
  let failed = 0
  const all = new Promise<void>((resolve) => {
    engine.changes.subscribeAll((c) => {
      if (!top.has(c.id)) return
      if (
        c.status === 'completed' ||
        c.status === 'failed' ||
        c.status === 'timed_out' ||
        c.status === 'cancelled'
      ) {
        if (c.status !== 'completed') failed++
        top.delete(c.id)
        if (top.size === 0) resolve()
      }
    })
  })
  engine.start()
  const t0 = performance.now()
  const requests = [
    ...Array.from({ length: 100 }, (_, p) => ({ task: 'g-parent', input: { p } })),
    ...Array.from({ length: 100 }, () => ({ task: 'g-chain', input: { n: 0 } })),
    ...Array.from({ length: 100 }, () => ({ task: 'g-loop', input: { n: 0 } })),
  ]
  for (const { execution } of await engine.enqueueMany(requests)) top.add(execution.id)
  await all
  const wallMs = performance.now() - t0
  const loaded = summarize(hops)
  const loadedHops = hops.length

  // The same hop on an idle engine: chains one at a time. The loaded figure above is this plus
  // the hop's wait for a slot behind the fan-outs' 5,000 children.
  hops = []
  for (let i = 0; i < ALONE_CHAINS; i++) {
    const { execution } = await engine.enqueue(chain, { n: 0 })
    await engine.waitFor(execution.id, { timeoutMs: 60_000 })
  }
  const alone = summarize(hops)
  const aloneHops = hops.length
  await engine.stop()
  const nOf = store.dialect === 'sqlite' ? "json_extract(output, '$.n')" : "(output::json->>'n')::int"
  const wrong = await store.get<{ n: number }>(
    `SELECT count(*) AS n FROM executions
      WHERE parent_id IS NULL AND (status != 'completed'
         OR (task_id = 'g-parent' AND output != '${CHILDREN}')
         OR (task_id = 'g-chain' AND ${nOf} != ${HOPS})
         OR (task_id = 'g-loop' AND ${nOf} != ${LOOP_ITERATIONS}))`,
  )
  await store.close()
  if (failed > 0 || wrong.n > 0)
    throw new Error(`general workflow workload: ${failed} did not complete, ${wrong.n} with a wrong result`)
  return {
    wallMs: round(wallMs, 0),
    hops: loadedHops,
    hopP50: round(loaded.p50),
    hopP99: round(loaded.p99),
    aloneHops,
    hopAloneP50: round(alone.p50),
    hopAloneP99: round(alone.p99),
  }
}
