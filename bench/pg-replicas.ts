/**
 * The PostgreSQL benchmark's workloads on real server processes (replicas, `src/main.ts` as
 * `npm start` runs it) sharing one fresh database, with no-op tasks (bench/pg-tasks.ts):
 * processing throughput with 1 or more replicas, HTTP throughput with the load spread over them
 * from a separate process, and enqueue→start latency within one replica and across two.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { createClient } from '@ratchet/client'
import { Engine, type Storage } from '@ratchet/core'
import { openPostgresStorage } from '@ratchet/storage'
import { freePort, RUN_SOURCES } from '../apps/server/test/child-server'
import { cpuSeconds, createBenchDatabase, postgresCpuSeconds, type BenchDatabase } from './pg-database'
import { tasks as pgTasks } from './pg-tasks'
import { percentilesMs, round } from './stats'

const ROOT = resolve(import.meta.dirname, '..')
const MAIN = join(ROOT, 'apps/server/src/main.ts')
const TASKS_MODULE = join(import.meta.dirname, 'pg-tasks.ts')

export interface ReplicaSettings {
  concurrency: number
  poolSize: number
}

interface BenchReplica {
  name: string
  url: string
  process: ChildProcess
  exited: Promise<number | null>
}

/**
 * A server process (`src/main.ts`, as `npm start` runs it) on the database, logging warnings
 * only (a line per execution would cost the replica CPU the SQLite benchmark does not pay);
 * resolves once its `/readyz` says ready.
 */
async function startReplica(
  database: BenchDatabase,
  name: string,
  settings: ReplicaSettings,
  env: Record<string, string> = {},
): Promise<BenchReplica> {
  const port = await freePort()
  const child = spawn(process.execPath, [...RUN_SOURCES, MAIN], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      RATCHET_TASKS: TASKS_MODULE,
      RATCHET_BENCH_REPLICA: name,
      RATCHET_CONCURRENCY: String(settings.concurrency),
      RATCHET_PG_POOL_SIZE: String(settings.poolSize),
      RATCHET_TRACING: 'off',
      LOG_LEVEL: 'warn',
      RATCHET_DRAIN_MS: '1000',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 120_000
  for (;;) {
    const status = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      () => 0,
    )
    if (status === 200) break
    if (child.exitCode !== null) throw new Error(`replica ${name} exited with ${child.exitCode} at start-up`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`replica ${name} not ready within 120 s`)
    }
    await delay(50)
  }
  return { name, url, process: child, exited }
}

async function stopReplicas(replicas: BenchReplica[]): Promise<void> {
  for (const replica of replicas) replica.process.kill('SIGTERM')
  await Promise.all(replicas.map((r) => r.exited))
}

function startReplicas(database: BenchDatabase, count: number, settings: ReplicaSettings) {
  return Promise.all(Array.from({ length: count }, (_, i) => startReplica(database, `r${i}`, settings)))
}

/**
 * Waits until `n` executions are completed, checking every 100 ms (fails after `timeoutMs`). The
 * check looks for one unfinished row (the first entry of an index), not a count: a count of the
 * table took 7 ms of the database's CPU ten times a second, inside the measured time. Once none
 * is left, every one must have completed.
 */
async function completed(database: BenchDatabase, n: number, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const left = await database.query(
      `SELECT 1 FROM executions WHERE status IN ('queued', 'running', 'waiting') LIMIT 1`,
    )
    if (left.length === 0) break
    if (Date.now() > deadline) throw new Error(`executions still unfinished after ${timeoutMs} ms`)
    await delay(100)
  }
  const [row] = await database.query<{ done: number; total: number }>(
    `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*)::int AS total FROM executions`,
  )
  if (row!.done !== n || row!.total < n)
    throw new Error(`${row!.done} of ${n} executions completed (${row!.total} rows)`)
}

/** First claim and last completion (epoch ms, from the history), and claims per worker. */
async function timeline(database: BenchDatabase) {
  const [span] = await database.query<{ first: number; last: number }>(
    `SELECT min(at) FILTER (WHERE to_status = 'running') AS first,
            max(at) FILTER (WHERE to_status = 'completed') AS last
       FROM execution_history WHERE event = 'status'`,
  )
  const workers = await database.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM execution_history
      WHERE event = 'status' AND to_status = 'running' GROUP BY detail::json->>'worker' ORDER BY 1 DESC`,
  )
  return { first: span!.first, last: span!.last, claimsPerReplica: workers.map((w) => w.n) }
}

/** CPU seconds used from `before` to now by the replicas, PostgreSQL (all of it) and others. */
function cpuSnapshot(pids: number[]) {
  return { replicas: pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0), postgres: postgresCpuSeconds() }
}

async function enqueueScheduled(database: BenchDatabase, n: number, runAt: number) {
  const storage: Storage = await openPostgresStorage({ url: database.url, poolSize: 2 })
  const engine = new Engine({ storage, tasks: pgTasks })
  const t0 = performance.now()
  for (let i = 0; i < n; i += 1000) {
    await engine.enqueueMany(
      Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
        task: 'noop',
        input: { i: i + j },
        options: { runAt },
      })),
    )
  }
  const enqueueMs = performance.now() - t0
  await storage.close()
  return enqueueMs
}

/**
 * Processing throughput: `n` no-op executions enqueued first (1000 per transaction), all due at
 * one moment T0 a little later; `replicaCount` replicas started meanwhile (all listening before
 * T0, or the run fails: raise BENCH_PG_START_MS); executions/s = n / (last completion − T0).
 * Process start-up is left out; the replicas find the work through their due timers.
 */
export async function pgProcessingThroughput(
  adminUrl: string,
  n: number,
  replicaCount: number,
  settings: ReplicaSettings,
  startMarginMs: number,
) {
  const database = await createBenchDatabase(adminUrl)
  try {
    // The schema first (a replica would migrate too; this way enqueueing does not wait for one).
    const t0 = Date.now() + startMarginMs
    const enqueueMs = await enqueueScheduled(database, n, t0)
    const replicas = await startReplicas(database, replicaCount, settings)
    if (Date.now() > t0 - 200) {
      await stopReplicas(replicas)
      throw new Error(
        `the replicas took longer than BENCH_PG_START_MS=${startMarginMs} ms to start and enqueue: raise it`,
      )
    }
    const pids = replicas.map((r) => r.process.pid!)
    await delay(t0 - Date.now())
    const cpu0 = cpuSnapshot(pids)
    await completed(database, n)
    const cpu1 = cpuSnapshot(pids)
    const { first, last, claimsPerReplica } = await timeline(database)
    await stopReplicas(replicas)
    const processMs = last - t0
    return {
      executionsPerSec: round(n / (processMs / 1000), 0),
      enqueuePerSec: round(n / (enqueueMs / 1000), 0),
      processMs,
      firstClaimAfterMs: first - t0,
      claimsPerReplica,
      cpuS: {
        replicas: round(cpu1.replicas - cpu0.replicas, 1),
        postgres: round(cpu1.postgres - cpu0.postgres, 1),
      },
    }
  } finally {
    await database.drop()
  }
}

/**
 * HTTP throughput: `replicaCount` replicas running; a load generator in its own process
 * (bench/http-load.ts) sends `n` executions as enqueueMany requests of `batch`, `inflight` at a
 * time, to the replicas in turn; executions/s = n / (first request → last completion).
 */
export async function pgHttpThroughput(
  adminUrl: string,
  n: number,
  replicaCount: number,
  settings: ReplicaSettings,
  inflight: number,
  batch: number,
) {
  const database = await createBenchDatabase(adminUrl)
  try {
    const replicas = await startReplicas(database, replicaCount, settings)
    const pids = replicas.map((r) => r.process.pid!)
    const cpu0 = cpuSnapshot(pids)
    const t0 = Date.now()
    const load = spawn(
      process.execPath,
      [
        ...RUN_SOURCES,
        join(import.meta.dirname, 'http-load.ts'),
        replicas.map((r) => r.url).join(','),
        String(n),
        String(inflight),
        String(batch),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    load.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const code = await new Promise<number | null>((resolve) => load.once('exit', resolve))
    if (code !== 0) throw new Error(`load generator exited with ${String(code)}`)
    const { enqueueMs } = JSON.parse(out) as { enqueueMs: number }
    await completed(database, n)
    const cpu1 = cpuSnapshot(pids)
    const { last, claimsPerReplica } = await timeline(database)
    await stopReplicas(replicas)
    return {
      executionsPerSec: round(n / ((last - t0) / 1000), 0),
      enqueuePerSec: round(n / (enqueueMs / 1000), 0),
      totalMs: last - t0,
      claimsPerReplica,
      cpuS: {
        replicas: round(cpu1.replicas - cpu0.replicas, 1),
        postgres: round(cpu1.postgres - cpu0.postgres, 1),
      },
    }
  } finally {
    await database.drop()
  }
}

/**
 * Enqueue→start latency through HTTP, one execution at a time, the next once the previous was
 * seen complete (`executions.wait` on the replica that took the enqueue). `across`: two
 * replicas, A with one slot held by a long task, so every execution enqueued on A starts on B
 * (woken by LISTEN/NOTIFY); otherwise one replica does both. Start = the task's first line
 * (CLOCK_MONOTONIC in the replica) − just before the enqueue call (the same clock here).
 */
export async function pgLatency(
  adminUrl: string,
  samples: number,
  warmup: number,
  across: boolean,
  settings: ReplicaSettings,
) {
  const database = await createBenchDatabase(adminUrl)
  const replicas: BenchReplica[] = []
  try {
    const a = await startReplica(database, 'A', across ? { ...settings, concurrency: 1 } : settings)
    replicas.push(a)
    const client = createClient<typeof pgTasks>({ url: a.url })
    if (across) {
      const { executionId } = await client.tasks.hold.enqueue({ ms: 3_600_000 })
      for (;;) {
        if ((await client.executions.get(executionId)).status === 'running') break
        await delay(20)
      }
      replicas.push(await startReplica(database, 'B', settings))
    }
    await delay(500)
    const starts: number[] = []
    const enqueues: number[] = []
    const completions: number[] = []
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = process.hrtime.bigint()
      const { executionId } = await client.tasks.noop.enqueue({ i })
      const enqueued = process.hrtime.bigint()
      const done = await client.tasks.noop.wait(executionId, { timeoutMs: 10_000 })
      const t1 = process.hrtime.bigint()
      if (done.status !== 'completed' || !done.output) throw new Error(`noop ${i} ended ${done.status}`)
      if (across && done.output.replica !== 'B')
        throw new Error(`noop ${i} ran on ${done.output.replica}, not B`)
      if (i >= warmup) {
        starts.push(Number(BigInt(done.output.startedNs) - t0) / 1e6)
        enqueues.push(Number(enqueued - t0) / 1e6)
        completions.push(Number(t1 - t0) / 1e6)
      }
    }
    await stopReplicas(replicas)
    return {
      start: percentilesMs(starts),
      enqueue: percentilesMs(enqueues),
      completion: percentilesMs(completions),
    }
  } finally {
    for (const replica of replicas) replica.process.kill('SIGKILL')
    await database.drop()
  }
}

/**
 * enqueue→start across replicas with the enqueue made in process, as the peers' producers
 * enqueue: this process is replica A (an engine on the database, its one slot held), the enqueue
 * is its `engine.enqueue`, and the execution starts on B, a server process woken by `NOTIFY`.
 * The HTTP request of `pgLatency` is left out, so this is the wake-up across replicas itself.
 */
export async function pgLatencyInProcess(
  adminUrl: string,
  samples: number,
  warmup: number,
  settings: ReplicaSettings,
) {
  const database = await createBenchDatabase(adminUrl)
  let storage: Storage | undefined
  let engine: Engine | undefined
  let b: BenchReplica | undefined
  try {
    storage = await openPostgresStorage({
      url: database.url,
      poolSize: settings.poolSize,
      applicationName: 'bench-A',
    })
    engine = new Engine({ storage, tasks: pgTasks, concurrency: 1 })
    const notifications = storage.notifications!
    const changeNotices = (wake: () => void) => notifications.onChange(wake)
    engine.start()
    const { execution: held } = await engine.enqueue('hold', { ms: 3_600_000 })
    while ((await engine.get(held.id))?.status !== 'running') await delay(20)
    b = await startReplica(database, 'B', settings)
    await delay(500)
    const starts: number[] = []
    const enqueues: number[] = []
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = process.hrtime.bigint()
      const { execution } = await engine.enqueue('noop', { i })
      const enqueued = process.hrtime.bigint()
      // Woken by B's change notices, as the server's waits are (engine.waitFor alone hears
      // only this process's changes, and polls once a second for the others').
      const done = await engine.waitFor(execution.id, { timeoutMs: 10_000, wakeOn: changeNotices })
      const output = done.output as { replica: string; startedNs: string } | undefined
      if (done.status !== 'completed' || !output) throw new Error(`noop ${i} ended ${done.status}`)
      if (output.replica !== 'B') throw new Error(`noop ${i} ran on ${output.replica}, not B`)
      if (i >= warmup) {
        starts.push(Number(BigInt(output.startedNs) - t0) / 1e6)
        enqueues.push(Number(enqueued - t0) / 1e6)
      }
    }
    await stopReplicas([b])
    return { start: percentilesMs(starts), enqueue: percentilesMs(enqueues) }
  } finally {
    b?.process.kill('SIGKILL')
    await engine?.stop({ drainMs: 0 })
    await storage?.close()
    await database.drop()
  }
}
