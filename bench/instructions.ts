/**
 * A fixed workload for instruction counts (callgrind), where wall time is too noisy to compare
 * two trees: `noop` runs CG_N (3,000) no-op executions in-process; `mix` runs 10 fan-outs of 50
 * children and 20 sequences of 4; `serial` runs CG_N no-ops one at a time (enqueue, wait for it,
 * then the next: the path of enqueue→start latency, one transaction per write). Bundled first, so that no TypeScript loader (and no esbuild
 * child process) runs under valgrind:
 *
 *   npx esbuild bench/instructions.ts --bundle --platform=node --format=esm --target=node20 \
 *     --external:better-sqlite3 --conditions=@ratchet/source --outfile=bench/instructions.tmp.mjs \
 *     --banner:js="import { createRequire } from 'module'; const require = createRequire('$PWD/package.json');"
 *   CG_MIGRATIONS=$PWD/packages/storage/migrations/sqlite valgrind --tool=callgrind \
 *     --callgrind-out-file=/dev/null node --single-threaded --predictable bench/instructions.tmp.mjs noop
 *
 * Per execution: (total at CG_N=3000 − total at CG_N=300) / 2700. The same total comes back to
 * about 1 % run after run.
 *
 * With CG_OBSERVE=1 the engine runs with the server's observer (prom-client metrics and the
 * OpenTelemetry tracer, no SDK registered), as `ratchet start` does by default.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { context } from '@opentelemetry/api'
import { Engine, type AttemptInfo, task, sequence, silentLogger, systemClock } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'
import { ServerMetrics } from '../apps/server/src/metrics'
import { combineObservers } from '../apps/server/src/observability'
import { AttemptTracer } from '../apps/server/src/tracing'

const N = Number(process.env.CG_N ?? 3000)
const mode = process.argv[2] ?? 'noop'
const noop = task({
  id: 'noop',
  input: z.object({ i: z.number().int() }),
  retry: { maxAttempts: 1 },
  run: () => null,
})
const leaf = task({
  id: 'leaf',
  input: z.object({ i: z.number().int() }),
  run: async ({ i }, ctx) => ctx.step('s', () => i * 2),
})
const inc = task({ id: 'inc', input: z.number(), run: (n: number) => n + 1 })
const chain = sequence('chain', [inc, inc, inc, inc])
const fan = task({
  id: 'fan',
  input: z.object({ n: z.number().int() }),
  run: async ({ n }, ctx) => {
    const out = await ctx.all(Array.from({ length: n }, (_, i) => ctx.child(`c${i}`, leaf, { i })))
    return ctx.step('finalize', () => out.reduce((a, b) => a + b, 0))
  },
})
const dir = mkdtempSync(join(tmpdir(), 'ratchet-cg-'))
const storage = openSqliteStorage({
  filename: join(dir, 'cg.db'),
  ...(process.env.CG_MIGRATIONS ? { migrationsFolder: process.env.CG_MIGRATIONS } : {}),
})
const metrics = process.env.CG_OBSERVE
  ? new ServerMetrics({
      engine: () => engine,
      clock: systemClock,
      logger: silentLogger,
      processMetrics: !process.env.CG_NO_PROCESS_METRICS,
    })
  : undefined
const tracer =
  process.env.CG_OBSERVE && process.env.CG_OBSERVE !== 'metrics' ? new AttemptTracer() : undefined
const observer = combineObservers([metrics?.observer, tracer?.observer].filter((o) => o !== undefined))
const engine: Engine = new Engine({
  ...(observer ? { observer } : {}),
  // As createServer wires it: the attempt runs in its span's context when it has one.
  ...(tracer
    ? {
        withinAttempt: <T>(attempt: AttemptInfo, fn: () => T): T => {
          const traced = tracer.contextOf(attempt)
          return traced ? context.with(traced, fn) : fn()
        },
      }
    : {}),
  storage,
  tasks: { noop, leaf, inc, chain, fan },
  concurrency: 100,
  claimBatchSize: 100,
  shortSleepMs: 0,
})
metrics?.followChanges(engine)
let expected = 0
const done = new Promise<void>((resolve) => {
  let n = 0
  engine.changes.subscribeAll((c) => {
    if ((c.status === 'completed' || c.status === 'failed') && ++n === expected) resolve()
  })
})
if (mode === 'serial') {
  // enqueued one at a time below, once the engine runs
} else if (mode === 'noop') {
  expected = N
  for (let i = 0; i < N; i += 1000)
    await engine.enqueueMany(
      Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ task: 'noop', input: { i: i + j } })),
    )
} else {
  // 10 fan-outs of 50 children + 20 sequences of 4 (each sequence: 1 parent + 4 children)
  expected = 10 * 51 + 20 * 5
  for (let i = 0; i < 10; i++) await engine.enqueue('fan', { n: 50 })
  for (let i = 0; i < 20; i++) await engine.enqueue('chain', i)
}
if (mode === 'serial') {
  engine.start()
  for (let i = 0; i < N; i++) {
    const { execution } = await engine.enqueue('noop', { i })
    await engine.waitFor(execution.id, { timeoutMs: 10_000 })
  }
} else {
  engine.start()
  await done
}
await engine.stop({ drainMs: 1000 })
await storage.close()
rmSync(dir, { recursive: true, force: true })
console.log(`done ${mode} ${expected}`)
