/**
 * `npm run bench:copy`: how long `ratchet copy-sqlite` takes to move a SQLite database into an
 * empty PostgreSQL one. Seeds, through the port as a server writes them, COPY_EXECUTIONS
 * executions (default 100,000): 80% completed with two recorded steps each (history: queued,
 * running, two step events, completed), 20% still queued; then copies them into a new database
 * on RATCHET_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), which is
 * dropped afterwards.
 *
 * Environment: COPY_EXECUTIONS (100000), COPY_BATCH_ROWS (5000), RATCHET_BENCH_PG_URL.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { copySqliteToPostgres, openSqliteStorage, type CopyProgress } from '@ratchet/storage'

const EXECUTIONS = Number(process.env.COPY_EXECUTIONS ?? 100_000)
const BATCH_ROWS = Number(process.env.COPY_BATCH_ROWS ?? 5000)
const ADMIN_URL = process.env.RATCHET_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SEED_BATCH = 1000

function row(now: number, i: number): NewExecution {
  return {
    id: newExecutionId(now),
    taskId: i % 3 === 0 ? 'send-email' : 'charge-card',
    input: JSON.stringify({ orderId: `order-${i}`, email: `user${i}@example.com`, amountCents: i * 7 }),
    maxAttempts: 5,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: i % 2 === 0 ? `key-${i}` : null,
    runAt: now,
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ratchet-copy-bench-'))
const file = join(dir, 'ratchet.db')
const storage = openSqliteStorage({ filename: file })
const seedStarted = performance.now()
for (let done = 0; done < EXECUTIONS; done += SEED_BATCH) {
  const now = Date.now()
  const n = Math.min(SEED_BATCH, EXECUTIONS - done)
  const rows = Array.from({ length: n }, (_, k) => row(now, done + k))
  await storage.enqueue(rows, now)
  const finishing = rows.slice(0, Math.round(n * 0.8)).map((r) => r.id)
  const { claimed } = await storage.claim({
    owner: 'seed',
    now,
    leaseMs: 60_000,
    limit: finishing.length,
    taskIds: ['send-email', 'charge-card'],
  })
  await storage.recordSteps(
    claimed.flatMap((r) =>
      ['load', 'send'].map((name, position) => ({
        executionId: r.id,
        run: r.runs,
        step: {
          position,
          name,
          kind: 'step' as const,
          status: 'done' as const,
          value: JSON.stringify({ ok: true, name, at: now }),
          error: null,
          wakeAt: null,
          childId: null,
          signalName: null,
          wakeupKey: null,
        },
      })),
    ),
    now,
  )
  await storage.settle(
    claimed.map((r) => ({ transition: 'complete' as const, id: r.id, run: r.runs, output: '{"sent":true}' })),
    now,
  )
}
await storage.close()
const seedMs = performance.now() - seedStarted
const megabytes = statSync(file).size / 1024 / 1024

const name = `ratchet_bench_copy_${process.pid}`
const admin = new pg.Client({ connectionString: ADMIN_URL })
await admin.connect()
await admin.query(`CREATE DATABASE ${name}`)
const url = new URL(ADMIN_URL)
url.pathname = `/${name}`
try {
  process.stderr.write(
    `seeded ${EXECUTIONS.toLocaleString('en-US')} executions in ${Math.round(seedMs)} ms (${megabytes.toFixed(0)} MB); copying\n`,
  )
  let last = 0
  const report = await copySqliteToPostgres({
    sqliteFilename: file,
    postgresUrl: url.toString(),
    batchRows: BATCH_ROWS,
    onProgress: (p: CopyProgress) => {
      if (performance.now() - last < 1000) return
      last = performance.now()
      process.stderr.write(
        `  ${p.table}: ${p.copied.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')}\n`,
      )
    },
  })
  const rows = report.tables.reduce((sum, t) => sum + t.rows, 0)
  console.log(`
| SQLite file | rows | copy (one transaction, ANALYZE included) | rows/s |
|---|---|---|---|
| ${megabytes.toFixed(0)} MB: ${report.tables.map((t) => `${t.table} ${t.rows.toLocaleString('en-US')}`).join(', ')} | ${rows.toLocaleString('en-US')} | ${(report.ms / 1000).toFixed(1)} s | ${Math.round(rows / (report.ms / 1000)).toLocaleString('en-US')} |
`)
  console.log(
    `RESULT ${JSON.stringify({ executions: EXECUTIONS, megabytes: Math.round(megabytes), rows, ms: report.ms })}`,
  )
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.end()
  rmSync(dir, { recursive: true, force: true })
}
