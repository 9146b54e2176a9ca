/**
 * `npm run bench`: Ratchet on SQLite, no-op tasks. Prints a table and one `RESULT {json}`
 * line. With BENCH_DATABASE_URL=postgres://… it runs the PostgreSQL benchmark instead
 * (bench/pg-run.ts, also `npm run bench:pg`). Compare with ../shared/bench/peers (./run.sh) run in the same session: the machine
 * is noisy, so only side-by-side numbers mean anything.
 *
 * Environment: BENCH_N (20000), BENCH_CONCURRENCY (100), BENCH_GENERAL_CONCURRENCY (25, the
 * general-path workflows), BENCH_HTTP_INFLIGHT (64),
 * BENCH_HTTP_BATCH (100: executions per enqueueMany request in the batched HTTP workload),
 * BENCH_LAT_N (300), BENCH_LAT_WARMUP (20), BENCH_REPS (3; the median is reported).
 * The workflow workload (bench/workflows.ts) uses the same concurrency.
 */
import { cpus } from 'node:os'
import { workflowWorkload } from './workflows'
import { generalWorkflowWorkload } from './workflows-general'
import { httpThroughput, inProcessThroughput, latency } from './workloads'

if (process.env.BENCH_DATABASE_URL) {
  await import('./pg-run')
  process.exit(0)
}

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const N = env('BENCH_N', 20_000)
const CONCURRENCY = env('BENCH_CONCURRENCY', 100)
/** The general-path workflows run at the server's default concurrency (RATCHET_CONCURRENCY). */
const GENERAL_CONCURRENCY = env('BENCH_GENERAL_CONCURRENCY', 25)
const INFLIGHT = env('BENCH_HTTP_INFLIGHT', 64)
const BATCH = env('BENCH_HTTP_BATCH', 100)
const LAT_N = env('BENCH_LAT_N', 300)
const LAT_WARMUP = env('BENCH_LAT_WARMUP', 20)
const REPS = env('BENCH_REPS', 3)

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

async function repeat<T extends Record<string, unknown>>(label: string, run: () => Promise<T>): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < REPS; i++) {
    results.push(await run())
    process.stderr.write(`  ${label} run ${i + 1}/${REPS}: ${JSON.stringify(results.at(-1))}\n`)
  }
  return results
}

function medianOf<T>(runs: T[], pick: (r: T) => number) {
  return median(runs.map(pick))
}

process.stderr.write(
  `ratchet bench: node ${process.version}, ${cpus().length} cpus, N=${N}, concurrency=${CONCURRENCY}, reps=${REPS}\n`,
)
const inProcess = await repeat('in-process throughput', () => inProcessThroughput(N, CONCURRENCY))
const http = await repeat('http throughput', () => httpThroughput(N, CONCURRENCY, INFLIGHT))
// Batched: fewer requests in flight, each carrying BATCH executions.
const httpBatch = await repeat('http batched throughput', () =>
  httpThroughput(N, CONCURRENCY, Math.max(1, Math.round(INFLIGHT / 16)), BATCH),
)
const latIn = await repeat('in-process latency', () => latency(LAT_N, LAT_WARMUP, 'in-process'))
const latHttp = await repeat('http latency', () => latency(LAT_N, LAT_WARMUP, 'http'))
const workflows = await repeat('workflows', () => workflowWorkload(CONCURRENCY))
const general = await repeat('workflows (general path)', () => generalWorkflowWorkload(GENERAL_CONCURRENCY))

const result = {
  date: new Date().toISOString(),
  node: process.version,
  n: N,
  concurrency: CONCURRENCY,
  inProcess: {
    executionsPerSec: medianOf(inProcess, (r) => r.executionsPerSec),
    enqueuePerSec: medianOf(inProcess, (r) => r.enqueuePerSec),
    runs: inProcess.map((r) => r.executionsPerSec),
  },
  http: {
    executionsPerSec: medianOf(http, (r) => r.executionsPerSec),
    enqueuePerSec: medianOf(http, (r) => r.enqueuePerSec),
    inflight: INFLIGHT,
    runs: http.map((r) => r.executionsPerSec),
  },
  httpBatch: {
    executionsPerSec: medianOf(httpBatch, (r) => r.executionsPerSec),
    enqueuePerSec: medianOf(httpBatch, (r) => r.enqueuePerSec),
    batch: BATCH,
    inflight: Math.max(1, Math.round(INFLIGHT / 16)),
    runs: httpBatch.map((r) => r.executionsPerSec),
  },
  latencyInProcess: {
    start: {
      p50: medianOf(latIn, (r) => r.start.p50),
      p95: medianOf(latIn, (r) => r.start.p95),
      p99: medianOf(latIn, (r) => r.start.p99),
    },
    completion: {
      p50: medianOf(latIn, (r) => r.completion.p50),
      p95: medianOf(latIn, (r) => r.completion.p95),
      p99: medianOf(latIn, (r) => r.completion.p99),
    },
  },
  workflows: {
    wallMs: medianOf(workflows, (r) => r.wallMs),
    meanQueueWaitMs: medianOf(workflows, (r) => r.meanQueueWaitMs),
    executions: workflows[0]?.executions ?? 0,
    runs: workflows.map((r) => r.wallMs),
  },
  workflowsGeneral: {
    wallMs: medianOf(general, (r) => r.wallMs),
    hopP50: medianOf(general, (r) => r.hopP50),
    hopP99: medianOf(general, (r) => r.hopP99),
    hopAloneP50: medianOf(general, (r) => r.hopAloneP50),
    hopAloneP99: medianOf(general, (r) => r.hopAloneP99),
    hops: general[0]?.hops ?? 0,
    runs: general.map((r) => r.wallMs),
  },
  latencyHttp: {
    start: {
      p50: medianOf(latHttp, (r) => r.start.p50),
      p95: medianOf(latHttp, (r) => r.start.p95),
      p99: medianOf(latHttp, (r) => r.start.p99),
    },
    completion: {
      p50: medianOf(latHttp, (r) => r.completion.p50),
      p95: medianOf(latHttp, (r) => r.completion.p95),
      p99: medianOf(latHttp, (r) => r.completion.p99),
    },
  },
}

const lat = (l: { p50: number; p95: number; p99: number }) => `${l.p50} / ${l.p95} / ${l.p99}`
console.log(`
Ratchet on SQLite — no-op tasks, median of ${REPS} runs (${new Date().toISOString()})

| workload                                   | result |
|--------------------------------------------|--------|
| in-process: executions/s (${N} bulk-enqueued, concurrency ${CONCURRENCY}) | ${result.inProcess.executionsPerSec} (runs: ${result.inProcess.runs.join(', ')}) |
| in-process: enqueue/s (1000 per call)      | ${result.inProcess.enqueuePerSec} |
| HTTP: executions/s, enqueue to last completion (${INFLIGHT} requests in flight) | ${result.http.executionsPerSec} (runs: ${result.http.runs.join(', ')}) |
| HTTP: enqueue/s (one execution per request) | ${result.http.enqueuePerSec} |
| HTTP batched: executions/s, enqueue to last completion (enqueueMany of ${BATCH}, ${result.httpBatch.inflight} in flight) | ${result.httpBatch.executionsPerSec} (runs: ${result.httpBatch.runs.join(', ')}) |
| HTTP batched: enqueue/s | ${result.httpBatch.enqueuePerSec} |
| in-process enqueue→start p50 / p95 / p99 ms | ${lat(result.latencyInProcess.start)} |
| in-process enqueue→observed completion ms  | ${lat(result.latencyInProcess.completion)} |
| HTTP enqueue→start p50 / p95 / p99 ms      | ${lat(result.latencyHttp.start)} |
| HTTP enqueue→observed completion (wait) ms | ${lat(result.latencyHttp.completion)} |
| workflows: 100 fan-outs × 50 children + finalize, 100 sequences of 4, 100 loops of 1 s (${result.workflows.executions} executions): wall ms | ${result.workflows.wallMs} (runs: ${result.workflows.runs.join(', ')}) |
| workflows: mean queue wait ms              | ${result.workflows.meanQueueWaitMs} |
| workflows, general path (ctx.all of 50 ctx.child + finalize child, chains of 4 awaited children, loops of 10 × sleep 100 ms + child), concurrency ${GENERAL_CONCURRENCY}: wall ms | ${result.workflowsGeneral.wallMs} (runs: ${result.workflowsGeneral.runs.join(', ')}) |
| general path: hop (child returns → parent runs again) p50 / p99 ms, ${result.workflowsGeneral.hops} hops | ${result.workflowsGeneral.hopP50} / ${result.workflowsGeneral.hopP99} |
| general path: the same hop on an idle engine (chains one at a time) p50 / p99 ms | ${result.workflowsGeneral.hopAloneP50} / ${result.workflowsGeneral.hopAloneP99} |
`)
console.log(`RESULT ${JSON.stringify(result)}`)
