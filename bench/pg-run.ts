/**
 * `npm run bench:pg` (or `npm run bench` with BENCH_DATABASE_URL): Ratchet on PostgreSQL, no-op
 * tasks, on the server of BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * a fresh database per measurement. Prints a table and one `RESULT {json}` line. Compare with
 * ../shared/bench/peers (./run.sh) run right after it: only side-by-side numbers mean anything.
 *
 * - processing throughput with 1 and 3 replicas (separate server processes): BENCH_N executions
 *   enqueued first, all due at one moment once the replicas are up; N / (last completion − that
 *   moment). Also the CPU seconds the replicas and PostgreSQL spent meanwhile.
 * - HTTP throughput with 1 and 3 replicas: a load generator process sends enqueueMany requests
 *   of BENCH_HTTP_BATCH to the replicas in turn while they run; N / (first request → last completion).
 * - enqueue→start latency over HTTP within one replica, and across two (enqueued on A, whose one
 *   slot is held, started on B); and across two with the enqueue made in this process (an engine
 *   that is replica A), as the peers' benchmarks enqueue.
 * - the workflow workloads (bench/workflows.ts, bench/workflows-general.ts) in process, one
 *   engine on PostgreSQL.
 *
 * Environment: BENCH_DATABASE_URL, BENCH_N (20000), BENCH_CONCURRENCY (100, per replica),
 * BENCH_PG_POOL (10, per replica), BENCH_HTTP_INFLIGHT (4), BENCH_HTTP_BATCH (100),
 * BENCH_LAT_N (300), BENCH_LAT_WARMUP (20), BENCH_REPS (3; the median is reported),
 * BENCH_PG_START_MS (20000: how long after enqueueing the executions become due; the replicas
 * must be up by then), BENCH_PG_ONLY (comma-separated workload names to run: processing, http,
 * latency, workflows).
 */
import { cpus } from 'node:os'
import { postgresStore } from './bench-store'
import { pgHttpThroughput, pgLatency, pgLatencyInProcess, pgProcessingThroughput } from './pg-replicas'
import { round } from './stats'
import { workflowWorkload } from './workflows'
import { generalWorkflowWorkload } from './workflows-general'

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const ADMIN_URL = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres'
const N = env('BENCH_N', 20_000)
const CONCURRENCY = env('BENCH_CONCURRENCY', 100)
/** The general-path workflows run at the server's default concurrency (RATCHET_CONCURRENCY). */
const GENERAL_CONCURRENCY = env('BENCH_GENERAL_CONCURRENCY', 25)
const POOL = env('BENCH_PG_POOL', 10)
const INFLIGHT = env('BENCH_HTTP_INFLIGHT', 4)
const BATCH = env('BENCH_HTTP_BATCH', 100)
const LAT_N = env('BENCH_LAT_N', 300)
const LAT_WARMUP = env('BENCH_LAT_WARMUP', 20)
const REPS = env('BENCH_REPS', 3)
const START_MS = env('BENCH_PG_START_MS', 20_000)
const ONLY = new Set((process.env.BENCH_PG_ONLY || 'processing,http,latency,workflows').split(','))
const settings = { concurrency: CONCURRENCY, poolSize: POOL }
const redacted = ADMIN_URL.replace(/^([a-z][\w+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@')

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

async function repeat<T extends Record<string, unknown>>(label: string, run: () => Promise<T>): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < REPS; i++) {
    results.push(await run())
    process.stderr.write(`  ${label} run ${i + 1}/${REPS}: ${JSON.stringify(results.at(-1))}\n`)
  }
  return results
}

/** The run with the median of `pick` (so its other figures belong to the same run). */
function medianRun<T>(runs: T[], pick: (r: T) => number): T | undefined {
  if (runs.length === 0) return undefined
  const m = median(runs.map(pick))
  return runs.find((r) => pick(r) === m)
}

process.stderr.write(
  `ratchet bench (PostgreSQL ${redacted}): node ${process.version}, ${cpus().length} cpus, N=${N}, ` +
    `concurrency=${CONCURRENCY} and pool=${POOL} per replica, reps=${REPS}\n`,
)
const skip = async <T>(name: string, run: () => Promise<T[]>): Promise<T[]> => (ONLY.has(name) ? run() : [])
const processing1 = await skip('processing', () =>
  repeat('processing, 1 replica', () => pgProcessingThroughput(ADMIN_URL, N, 1, settings, START_MS)))
const processing3 = await skip('processing', () =>
  repeat('processing, 3 replicas', () => pgProcessingThroughput(ADMIN_URL, N, 3, settings, START_MS)))
const http1 = await skip('http', () =>
  repeat('http batched, 1 replica', () => pgHttpThroughput(ADMIN_URL, N, 1, settings, INFLIGHT, BATCH)))
const http3 = await skip('http', () =>
  repeat('http batched, 3 replicas', () => pgHttpThroughput(ADMIN_URL, N, 3, settings, INFLIGHT, BATCH)))
const latSame = await skip('latency', () =>
  repeat('latency, one replica', () => pgLatency(ADMIN_URL, LAT_N, LAT_WARMUP, false, settings)))
const latAcross = await skip('latency', () =>
  repeat('latency, across replicas', () => pgLatency(ADMIN_URL, LAT_N, LAT_WARMUP, true, settings)))
const latInProcess = await skip('latency', () =>
  repeat('latency, across replicas, enqueued in process', () =>
    pgLatencyInProcess(ADMIN_URL, LAT_N, LAT_WARMUP, settings),
  ))
const store = postgresStore(ADMIN_URL, POOL)
const workflows = await skip('workflows', () =>
  repeat('workflows', () => workflowWorkload(CONCURRENCY, {}, store)))
const general = await skip('workflows', () =>
  repeat('workflows (general path)', () => generalWorkflowWorkload(GENERAL_CONCURRENCY, store)))

function throughputOf<T extends { executionsPerSec: number }>(runs: T[]): Partial<T> & { runs: number[] } {
  const run: Partial<T> = medianRun(runs, (r) => r.executionsPerSec) ?? {}
  return { ...run, runs: runs.map((r) => r.executionsPerSec) }
}
type Latency = Awaited<ReturnType<typeof pgLatency>>
const medianOf = <K extends string>(
  runs: Record<K, { p50: number; p95: number; p99: number }>[],
  key: K,
) => ({
  p50: median(runs.map((r) => r[key].p50)),
  p95: median(runs.map((r) => r[key].p95)),
  p99: median(runs.map((r) => r[key].p99)),
})
const latencyOf = (runs: Latency[]) =>
  runs.length === 0
    ? undefined
    : {
        start: medianOf(runs, 'start'),
        enqueue: medianOf(runs, 'enqueue'),
        completion: medianOf(runs, 'completion'),
      }

const result = {
  date: new Date().toISOString(),
  node: process.version,
  database: 'postgresql',
  n: N,
  concurrency: CONCURRENCY,
  poolSize: POOL,
  processing: { replicas1: throughputOf(processing1), replicas3: throughputOf(processing3) },
  httpBatch: {
    batch: BATCH,
    inflight: INFLIGHT,
    replicas1: throughputOf(http1),
    replicas3: throughputOf(http3),
  },
  latencyOneReplica: latencyOf(latSame),
  latencyAcrossReplicas: latencyOf(latAcross),
  latencyAcrossInProcess:
    latInProcess.length === 0
      ? undefined
      : { start: medianOf(latInProcess, 'start'), enqueue: medianOf(latInProcess, 'enqueue') },
  workflows:
    workflows.length === 0
      ? undefined
      : {
          wallMs: median(workflows.map((r) => r.wallMs)),
          meanQueueWaitMs: median(workflows.map((r) => r.meanQueueWaitMs)),
          executions: workflows[0]!.executions,
          runs: workflows.map((r) => r.wallMs),
        },
  workflowsGeneral:
    general.length === 0
      ? undefined
      : {
          wallMs: median(general.map((r) => r.wallMs)),
          hopP50: median(general.map((r) => r.hopP50)),
          hopP99: median(general.map((r) => r.hopP99)),
          hopAloneP50: median(general.map((r) => r.hopAloneP50)),
          hopAloneP99: median(general.map((r) => r.hopAloneP99)),
          hops: general[0]!.hops,
          runs: general.map((r) => r.wallMs),
        },
}

const lat = (l: { p50: number; p95: number; p99: number } | undefined) =>
  l ? `${l.p50} / ${l.p95} / ${l.p99}` : '—'
const tp = (t: { executionsPerSec?: number; runs: number[] }) =>
  t.executionsPerSec === undefined ? '—' : `${t.executionsPerSec} (runs: ${t.runs.join(', ')})`
const cpu = (t: { cpuS?: { replicas: number; postgres: number } }) =>
  t.cpuS ? `replicas ${t.cpuS.replicas} s, PostgreSQL ${t.cpuS.postgres} s` : '—'
const claims = (t: { claimsPerReplica?: number[] }) => (t.claimsPerReplica ?? []).join(' / ') || '—'
const { processing, httpBatch } = result
console.log(`
Ratchet on PostgreSQL — no-op tasks, median of ${REPS} runs (${result.date}); concurrency ${CONCURRENCY} and pool ${POOL} per replica

| workload | result |
|---|---|
| processing: executions/s, ${N} enqueued then due at once, 1 replica | ${tp(processing.replicas1)} |
| processing: executions/s, 3 replicas | ${tp(processing.replicas3)} |
| processing: enqueue/s (1000 per transaction) | ${processing.replicas1.enqueuePerSec ?? '—'} |
| processing, 1 replica: CPU during the run (median run) | ${cpu(processing.replicas1)} in ${round((processing.replicas1.processMs ?? 0) / 1000, 1)} s |
| processing, 3 replicas: CPU during the run; claims per replica | ${cpu(processing.replicas3)} in ${round((processing.replicas3.processMs ?? 0) / 1000, 1)} s; ${claims(processing.replicas3)} |
| HTTP batched (enqueueMany of ${BATCH}, ${INFLIGHT} in flight): executions/s, 1 replica | ${tp(httpBatch.replicas1)} |
| HTTP batched: executions/s, 3 replicas (requests to each in turn) | ${tp(httpBatch.replicas3)} |
| HTTP batched: enqueue/s, 1 / 3 replicas | ${httpBatch.replicas1.enqueuePerSec ?? '—'} / ${httpBatch.replicas3.enqueuePerSec ?? '—'} |
| HTTP enqueue→start p50 / p95 / p99 ms, one replica | ${lat(result.latencyOneReplica?.start)} |
| HTTP enqueue→start p50 / p95 / p99 ms, across replicas (enqueued on A, run on B) | ${lat(result.latencyAcrossReplicas?.start)} |
| enqueue→start p50 / p95 / p99 ms, across replicas, enqueued in process on A (as the peers enqueue) | ${lat(result.latencyAcrossInProcess?.start)} |
| in-process enqueue call on A p50 / p95 / p99 ms | ${lat(result.latencyAcrossInProcess?.enqueue)} |
| HTTP enqueue call (the typed client's enqueue returns) p50 / p95 / p99 ms, one replica | ${lat(result.latencyOneReplica?.enqueue)} |
| HTTP enqueue→observed completion (wait on A) ms, across replicas | ${lat(result.latencyAcrossReplicas?.completion)} |
| workflows (in process, 1 engine): 100 fan-outs × 50 + finalize, 100 sequences of 4, 100 loops of 1 s (${result.workflows?.executions ?? '—'} executions): wall ms | ${result.workflows ? `${result.workflows.wallMs} (runs: ${result.workflows.runs.join(', ')})` : '—'} |
| workflows: mean queue wait ms | ${result.workflows?.meanQueueWaitMs ?? '—'} |
| workflows, general path (ctx.all of 50 ctx.child + finalize, chains of 4, loops of 10 × sleep 100 ms + child): wall ms | ${result.workflowsGeneral ? `${result.workflowsGeneral.wallMs} (runs: ${result.workflowsGeneral.runs.join(', ')})` : '—'} |
| general path: hop p50 / p99 ms | ${result.workflowsGeneral ? `${result.workflowsGeneral.hopP50} / ${result.workflowsGeneral.hopP99}` : '—'} |
| general path: the same hop on an idle engine p50 / p99 ms | ${result.workflowsGeneral ? `${result.workflowsGeneral.hopAloneP50} / ${result.workflowsGeneral.hopAloneP99}` : '—'} |
`)
console.log(`RESULT ${JSON.stringify(result)}`)
