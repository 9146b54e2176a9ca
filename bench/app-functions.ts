/**
 * `npm run bench:functions`: steps per second of an app-hosted durable function over loopback
 * HTTP, in isolated and sequential mode, beside the same workflow as a server-side task, and
 * the per-step overhead in ms. The app is served by `serveFetch` in this process and the
 * server is `createServer` on a fresh SQLite file, so both share one event loop: the figures
 * include the app's own work, as a co-located app's would.
 *
 * Each workload runs EXECUTIONS executions of STEPS no-op steps (default 20 × 50), 10 at once.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { task } from '@ratchet/core'
import { appFunctions } from '@ratchet/orpc'
import { createFunctionsHandler, defineFunction, type FunctionContext } from '@ratchet/orpc/functions'
import { serveFetch } from '@ratchet/orpc/node'
import { createServer } from '@ratchet/server'
import { percentilesMs } from './stats'

const SECRET = 'bench-functions-secret-0123456789abcdef'
const STEPS = Number(process.env.STEPS ?? 50)
const EXECUTIONS = Number(process.env.EXECUTIONS ?? 20)
const AT_ONCE = 10
const input = z.object({ steps: z.number() })

async function body({ steps }: { steps: number }, ctx: Pick<FunctionContext, 'step'>) {
  let total = 0
  for (let i = 0; i < steps; i++) total += await ctx.step(`s${i}`, () => i)
  return total
}

const functions = {
  isolated: defineFunction({ id: 'fn.isolated', input, mode: 'isolated', run: body }),
  sequential: defineFunction({ id: 'fn.sequential', input, mode: 'sequential', run: body }),
}
const serverTask = task({ id: 'server.task', input, run: body })

async function main() {
  const app = await serveFetch(createFunctionsHandler(functions, { secret: SECRET }))
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-bench-functions-'))
  const server = await createServer({
    tasks: { serverTask, ...(await appFunctions({ url: app.url, secret: SECRET })) },
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
  })
  await server.start()
  const { engine } = server
  const results: Record<string, unknown> = {}
  const baseline: Record<string, number> = {}
  try {
    for (const id of ['server.task', 'fn.sequential', 'fn.isolated']) {
      const durations: number[] = []
      const t0 = performance.now()
      let next = 0
      await Promise.all(
        Array.from({ length: AT_ONCE }, async () => {
          while (next < EXECUTIONS) {
            next++
            const start = performance.now()
            const { execution } = await engine.enqueue(id, { steps: STEPS })
            const executionId = execution.id
            const done = await engine.waitFor(executionId, { timeoutMs: 120_000 })
            if (done.status !== 'completed')
              throw new Error(`${id}: ${done.status} ${JSON.stringify(done.error)}`)
            durations.push(performance.now() - start)
          }
        }),
      )
      const wallMs = performance.now() - t0
      const stepsPerSecond = Math.round((EXECUTIONS * STEPS) / (wallMs / 1000))
      const perExecution = percentilesMs(durations)
      const msPerStep = Number((perExecution.p50 / STEPS).toFixed(3))
      baseline[id] = msPerStep
      results[id] = {
        stepsPerSecond,
        executionMs: perExecution,
        msPerStep,
        overheadMsPerStep: Number((msPerStep - (baseline['server.task'] ?? msPerStep)).toFixed(3)),
      }
      console.log(id, JSON.stringify(results[id]))
    }
  } finally {
    await server.stop()
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`RESULT ${JSON.stringify({ steps: STEPS, executions: EXECUTIONS, atOnce: AT_ONCE, results })}`)
}

await main()
