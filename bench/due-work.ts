/**
 * `npm run bench:due`: cost must follow the due work, not the data held. Measures enqueue→start
 * latency (one execution at a time, in process) on a database that holds nothing, 100,000
 * executions scheduled an hour ahead (half at priority 0, half at priority 5), 400,000 finished
 * executions with their history, and both. A claim that reads future or finished rows shows up
 * as a start p50/p99 that grows with them.
 *
 * With BENCH_DATABASE_URL (a postgres:// URL of a server to create scratch databases on), the
 * same on PostgreSQL, a fresh database per scenario.
 *
 * Environment: DUE_SCHEDULED (100000), DUE_FINISHED (400000), DUE_SAMPLES (200), DUE_WARMUP (20),
 * BENCH_DATABASE_URL.
 */
import { z } from 'zod'
import { Engine, newExecutionId, task, type NewExecution, type Storage } from '@ratchet/core'
import { postgresStore, sqliteStore } from './bench-store'
import { round, summarize } from './stats'

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const SCHEDULED = env('DUE_SCHEDULED', 100_000)
const FINISHED = env('DUE_FINISHED', 400_000)
const SAMPLES = env('DUE_SAMPLES', 200)
const WARMUP = env('DUE_WARMUP', 20)
const HOUR = 3_600_000
const BATCH = 1000
const DATABASE_URL = process.env.BENCH_DATABASE_URL
const open = DATABASE_URL ? postgresStore(DATABASE_URL) : sqliteStore
const dialect = DATABASE_URL ? 'PostgreSQL' : 'SQLite'

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

function row(now: number, runAt: number, priority: number, i: number): NewExecution {
  return {
    id: newExecutionId(now),
    taskId: 'noop',
    input: JSON.stringify({ i }),
    maxAttempts: 1,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority,
    idempotencyKey: null,
    runAt,
  }
}

/** Through the port, as the engine writes them: enqueued, claimed and completed, with history. */
async function seedFinished(storage: Storage, count: number): Promise<void> {
  for (let done = 0; done < count; done += BATCH) {
    const now = Date.now() - 2 * HOUR
    const n = Math.min(BATCH, count - done)
    await storage.enqueue(
      Array.from({ length: n }, (_, k) => row(now, now, 0, done + k)),
      now,
    )
    const { claimed } = await storage.claim({
      owner: 'seed',
      now,
      leaseMs: 60_000,
      limit: n,
      taskIds: ['noop'],
    })
    await storage.settle(
      claimed.map((r) => ({ transition: 'complete' as const, id: r.id, run: r.runs, output: 'null' })),
      now,
    )
  }
}

async function seedScheduled(storage: Storage, count: number): Promise<void> {
  for (let done = 0; done < count; done += BATCH) {
    const now = Date.now()
    const n = Math.min(BATCH, count - done)
    await storage.enqueue(
      Array.from({ length: n }, (_, k) => row(now, now + HOUR, (done + k) % 2 === 0 ? 0 : 5, done + k)),
      now,
    )
  }
}

async function scenario(name: string, scheduled: number, finished: number) {
  const store = await open()
  const { storage } = store
  const seeded = performance.now()
  await seedFinished(storage, finished)
  await seedScheduled(storage, scheduled)
  const seedMs = performance.now() - seeded
  const engine = new Engine({ storage, tasks: { noop } })
  engine.start()
  const sample = async () => {
    const starts: number[] = []
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      let startedAt = 0
      onStart = () => (startedAt = performance.now())
      const t0 = performance.now()
      const { execution } = await engine.enqueue('noop', { i })
      await engine.waitFor(execution.id, { timeoutMs: 10_000 })
      if (i >= WARMUP) starts.push(startedAt - t0)
    }
    return summarize(starts)
  }
  const s = await sample()
  // PostgreSQL: the seeding left dead entries (rows that were queued, then claimed and finished)
  // in the partial indexes of queued and running rows, which scans step over until VACUUM removes
  // them. Autovacuum does that in a steady state; right after a burst it has not yet.
  let vacuumed: { p50: number; p99: number } | undefined
  if (store.dialect === 'postgresql' && finished > 0) {
    await store.get('VACUUM (ANALYZE) executions')
    vacuumed = await sample()
  }
  await engine.stop()
  await store.close()
  const result = {
    name,
    scheduled,
    finished,
    p50: round(s.p50),
    p99: round(s.p99),
    ...(vacuumed ? { vacuumedP50: round(vacuumed.p50), vacuumedP99: round(vacuumed.p99) } : {}),
    seedMs: round(seedMs, 0),
  }
  process.stderr.write(`  ${JSON.stringify(result)}\n`)
  return result
}

process.stderr.write(
  `ratchet due-work bench (${dialect}): ${SAMPLES} sequential enqueue→start samples per scenario\n`,
)
const results = [
  await scenario('empty', 0, 0),
  await scenario('scheduled', SCHEDULED, 0),
  await scenario('finished', 0, FINISHED),
  await scenario('both', SCHEDULED, FINISHED),
]
console.log(`
| database holds | enqueue→start p50 ms | p99 ms | after VACUUM p50 / p99 ms |
|---|---|---|---|
${results.map((r) => `| ${r.name}: ${r.scheduled.toLocaleString('en')} scheduled +1 h, ${r.finished.toLocaleString('en')} finished | ${r.p50} | ${r.p99} | ${'vacuumedP50' in r ? `${r.vacuumedP50} / ${r.vacuumedP99}` : '—'} |`).join('\n')}
`)
console.log(`RESULT ${JSON.stringify(results)}`)
