import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { Engine, task, type TaskMap } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'
import { createClient } from '@ratchet/client'
import { createServer } from '@ratchet/server'
import { round, summarize } from './stats'

/** Hooks the benchmark tasks call, so each workload observes its own executions. */
let onStart: () => void = () => {}

const noop = task({
  id: 'noop',
  input: z.object({ i: z.number().int() }),
  retry: { maxAttempts: 1 },
  run: () => {
    onStart()
    return null
  },
})
export const benchTasks: TaskMap = { noop }

function tempDb() {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-bench-'))
  return { file: join(dir, 'bench.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

function countCompletions(engine: Engine, n: number): Promise<void> {
  let done = 0
  return new Promise((resolve) => {
    const off = engine.changes.subscribeAll((change) => {
      if (change.status === 'completed' && ++done === n) {
        off()
        resolve()
      }
    })
  })
}

/** N no-op executions bulk-enqueued (1000 per transaction), then processed by a freshly started engine. */
export async function inProcessThroughput(n: number, concurrency: number) {
  const db = tempDb()
  const storage = openSqliteStorage({ filename: db.file })
  const engine = new Engine({ storage, tasks: benchTasks, concurrency, claimBatchSize: concurrency })
  const t0 = performance.now()
  for (let i = 0; i < n; i += 1000) {
    await engine.enqueueMany(
      Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ task: 'noop', input: { i: i + j } })),
    )
  }
  const enqueueMs = performance.now() - t0
  const all = countCompletions(engine, n)
  const t1 = performance.now()
  engine.start()
  await all
  const processMs = performance.now() - t1
  await engine.stop()
  await storage.close()
  db.cleanup()
  return {
    enqueuePerSec: round(n / (enqueueMs / 1000), 0),
    executionsPerSec: round(n / (processMs / 1000), 0),
    processMs: round(processMs, 0),
  }
}

/**
 * N executions enqueued one request each over HTTP, `inflight` requests at a time, by a
 * load generator in its own process, while the server runs them.
 */
export async function httpThroughput(n: number, concurrency: number, inflight: number, batch = 1) {
  const db = tempDb()
  const server = await createServer({
    tasks: benchTasks,
    databaseUrl: `file:${db.file}`,
    port: 0,
    concurrency,
  })
  const { url } = await server.start()
  const all = countCompletions(server.engine, n)
  const t0 = performance.now()
  const load = spawn(
    process.execPath,
    [
      '--conditions=@ratchet/source',
      '--import',
      'tsx',
      join(import.meta.dirname, 'http-load.ts'),
      url,
      String(n),
      String(inflight),
      String(batch),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let out = ''
  load.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => load.once('exit', resolve))
  if (code !== 0) throw new Error(`load generator exited with ${String(code)}`)
  const { enqueueMs } = JSON.parse(out) as { enqueueMs: number }
  await all
  const totalMs = performance.now() - t0
  await server.stop()
  db.cleanup()
  return {
    enqueuePerSec: round(n / (enqueueMs / 1000), 0),
    executionsPerSec: round(n / (totalMs / 1000), 0),
    totalMs: round(totalMs, 0),
  }
}

/**
 * Enqueue→start latency on an idle engine: one execution at a time, the next only after the
 * previous was observed complete. `start` = first line of the task − just before enqueue.
 */
export async function latency(samples: number, warmup: number, via: 'in-process' | 'http') {
  const db = tempDb()
  const server = await createServer({ tasks: benchTasks, databaseUrl: `file:${db.file}`, port: 0 })
  const { url } = await server.start()
  const client = createClient({ url })
  await new Promise((resolve) => setTimeout(resolve, 500))
  const starts: number[] = []
  const completions: number[] = []
  for (let i = 0; i < warmup + samples; i++) {
    let startedAt = 0
    onStart = () => (startedAt = performance.now())
    const t0 = performance.now()
    if (via === 'in-process') {
      const { execution } = await server.engine.enqueue('noop', { i })
      await server.engine.waitFor(execution.id, { timeoutMs: 10_000 })
    } else {
      const { executionId } = await client.executions.enqueue('noop', { i })
      await client.executions.wait(executionId, { timeoutMs: 10_000 })
    }
    const completedAt = performance.now()
    if (i >= warmup) {
      starts.push(startedAt - t0)
      completions.push(completedAt - t0)
    }
  }
  onStart = () => {}
  await server.stop()
  db.cleanup()
  const round2 = (s: { p50: number; p95: number; p99: number }) => ({
    p50: round(s.p50),
    p95: round(s.p95),
    p99: round(s.p99),
  })
  return { start: round2(summarize(starts)), completion: round2(summarize(completions)) }
}
