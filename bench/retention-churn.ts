/**
 * `npm run bench:retention`: churns BENCH_CHURN_N (1,000,000) no-op executions through a
 * server with a short retention and prints the SQLite file size (+ WAL) every
 * BENCH_CHURN_EVERY (50,000) executions: with retention on, it must level off.
 *
 * The server is `createServer` from apps/server (the real wiring: engine, retention timer,
 * SQLite file in WAL mode with auto_vacuum=INCREMENTAL), in this process. Executions are
 * enqueued through the engine (`enqueueMany`, 1,000 per call) rather than over HTTP: HTTP
 * enqueues cost ~3x more CPU per execution on this 2-core machine, and the point here is the
 * database, not the HTTP layer. At most BENCH_CHURN_BACKLOG (5,000) are queued at a time.
 *
 * Environment: BENCH_CHURN_N, BENCH_CHURN_EVERY, BENCH_CHURN_BACKLOG, BENCH_RETENTION_MS
 * (5000), BENCH_PURGE_INTERVAL_MS (1000), BENCH_CONCURRENCY (100), BENCH_DIR (a temp folder,
 * removed at the end unless given).
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { task, type Logger } from '@ratchet/core'
import type { SqliteStorage } from '@ratchet/storage'
import { createServer } from '../apps/server/src/index'

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const N = env('BENCH_CHURN_N', 1_000_000)
const EVERY = env('BENCH_CHURN_EVERY', 50_000)
const BACKLOG = env('BENCH_CHURN_BACKLOG', 5_000)
const RETENTION_MS = env('BENCH_RETENTION_MS', 5_000)
const PURGE_INTERVAL_MS = env('BENCH_PURGE_INTERVAL_MS', 1_000)
const CONCURRENCY = env('BENCH_CONCURRENCY', 100)
const CHUNK = 1_000

const dir = process.env.BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'ratchet-churn-'))
const filename = join(dir, 'churn.db')

/** Purge reports, from the retention timer's info logs. */
const purges: { executions: number; batches: number; maxBatchMs: number; reclaimedPages: number }[] = []
const noop = () => {}
const logger: Logger = {
  fatal: noop,
  error: (obj: unknown, msg?: string) => console.error(msg, obj),
  warn: noop,
  info: (obj: unknown, msg?: string) => {
    if (msg === 'retention purge') purges.push(obj as (typeof purges)[number])
  },
  debug: noop,
  trace: noop,
  child: () => logger,
} as unknown as Logger

const tasks = { noop: task({ id: 'noop', input: z.object({ i: z.number() }), run: () => null }) }
const server = await createServer({
  tasks,
  databaseUrl: `file:${filename}`,
  port: 0,
  concurrency: CONCURRENCY,
  retentionMs: RETENTION_MS,
  purgeIntervalMs: PURGE_INTERVAL_MS,
  logger,
  handleStrayErrors: false,
})
await server.start()
const { engine } = server
const storage = engine.storage as SqliteStorage
const client = storage.db.$client
/** Every purge transaction's duration: better-sqlite3 is synchronous, so the call is the transaction. */
const batchMs: number[] = []
const purge = storage.purge.bind(storage)
storage.purge = (request) => {
  const started = performance.now()
  const pending = purge(request)
  batchMs.push(performance.now() - started)
  return pending
}

let finished = 0
let wakeProducer: (() => void) | undefined
engine.changes.subscribeAll((change) => {
  if (change.status !== 'completed') return
  finished++
  if (wakeProducer && finished % 500 === 0) wakeProducer()
})

const size = (path: string) => (existsSync(path) ? statSync(path).size : 0)
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
const rows = (table: string) => client.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number
const started = performance.now()
const series: { executions: number; seconds: number; dbMB: number; walMB: number; rows: number }[] = []

function report(): void {
  const point = {
    executions: finished,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    dbMB: Number(mb(size(filename))),
    walMB: Number(mb(size(`${filename}-wal`))),
    rows: rows('executions'),
  }
  series.push(point)
  const maxBatch = batchMs.reduce((a, b) => Math.max(a, b), 0)
  console.log(
    `${String(point.executions).padStart(9)} done  ${String(point.seconds).padStart(7)} s  db ${mb(size(filename)).padStart(7)} MB  wal ${mb(size(`${filename}-wal`)).padStart(6)} MB  executions rows ${String(point.rows).padStart(7)}  history rows ${String(rows('execution_history')).padStart(7)}  free pages ${String(client.pragma('freelist_count', { simple: true })).padStart(6)}  purges ${purges.length}  max batch ${maxBatch.toFixed(1)} ms`,
  )
}

console.log(
  `retention churn: ${N} executions, retention ${RETENTION_MS} ms, purge every ${PURGE_INTERVAL_MS} ms, concurrency ${CONCURRENCY}, ${filename}`,
)
let enqueued = 0
let nextReport = EVERY
while (enqueued < N) {
  while (enqueued - finished >= BACKLOG) await new Promise<void>((resolve) => (wakeProducer = resolve))
  const n = Math.min(CHUNK, N - enqueued)
  await engine.enqueueMany(
    Array.from({ length: n }, (_, k) => ({ task: 'noop', input: { i: enqueued + k } })),
  )
  enqueued += n
  if (finished >= nextReport) {
    report()
    nextReport += EVERY
  }
}
while (finished < N)
  await new Promise<void>((resolve) => {
    wakeProducer = resolve
    setTimeout(resolve, 50)
  })
report()
const totalSeconds = (performance.now() - started) / 1000
const batchTimes = [...batchMs].sort((a, b) => a - b)
const pct = (q: number) => Math.round((batchTimes[Math.floor((batchTimes.length - 1) * q)] ?? 0) * 10) / 10
console.log(
  `RESULT ${JSON.stringify({
    executions: N,
    seconds: Math.round(totalSeconds),
    perSecond: Math.round(N / totalSeconds),
    retentionMs: RETENTION_MS,
    purges: purges.length,
    purgedExecutions: purges.reduce((a, p) => a + p.executions, 0),
    purgeBatches: batchTimes.length,
    batchMs: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: pct(1) },
    series,
  })}`,
)
await server.stop()
if (!process.env.BENCH_DIR) rmSync(dir, { recursive: true, force: true })
