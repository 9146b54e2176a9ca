/**
 * `npx tsx bench/pg-drivers.ts`: the PostgreSQL adapter's two hottest statements, the claim
 * (CLAIM in packages/storage/src/postgres/claim.ts) and the settle of completed runs
 * (APPLY_ALONE in settle.ts), run through `pg` (node-postgres, the adapter's driver) and
 * through `postgres` (porsager's postgres.js), with the same SQL text and parameters, each
 * as a named prepared statement on ONE connection, so what differs is the driver: its
 * protocol handling, parameter serialization and row parsing (int8 → number in both).
 *
 * A scratch database `ratchet_bench_<random>` gets the migrations and BENCH_PG_ROWS (20,000)
 * queued executions; each measurement claims a batch (1 or 32), then completes it, in a
 * loop (after 100 rounds of warm-up); the queue is refilled before each. The drivers
 * alternate over BENCH_PG_ROUNDS (3) rounds and the median round is reported: statements per
 * second, executions per second (claimed + completed), and p50 / p99 latency of each
 * statement, and this process's CPU per statement (the driver's own work: parameter
 * serialization, protocol, row parsing; steadier than wall time on a busy machine). Two
 * commit modes: `durable` (the server's default, each statement waits for its WAL flush: what
 * the adapter does) and `async` (`synchronous_commit = off` for the session: no disk wait, so
 * what is left is the CPU of the driver and the server).
 *
 * Environment: RATCHET_BENCH_PG_URL (a database on the server to use for the admin
 * connection; default postgres://postgres@127.0.0.1:5432/postgres), BENCH_PG_ROWS,
 * BENCH_PG_ROUNDS, BENCH_PG_OPS_1 (claims per run at batch 1, 3000), BENCH_PG_OPS_32 (500), and
 * to run a part: BENCH_PG_DRIVERS (pg,postgres), BENCH_PG_MODES (durable,async),
 * BENCH_PG_BATCHES (1,32), BENCH_PG_WARMUP (50 claims).
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

// The adapter's modules import @ratchet/core from source: run under the source condition.
if (!process.execArgv.includes('--conditions=@ratchet/source')) {
  const child = spawnSync(
    process.execPath,
    ['--conditions=@ratchet/source', ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit' },
  )
  process.exit(child.status ?? 1)
}

const pg = (await import('pg')).default
const postgres = (await import('postgres')).default
const { CLAIM, claimValues } = await import('../packages/storage/src/postgres/claim')
const { APPLY_ALONE, applyValues } = await import('../packages/storage/src/postgres/settle')
const { SESSION_OPTIONS, typeParsers } = await import('../packages/storage/src/postgres/database')
const { migratePostgres } = await import('../packages/storage/src/postgres/migrate')
const { POSTGRES_MIGRATIONS_FOLDER } = await import('../packages/storage/src/migrations-folder')

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const ADMIN_URL = process.env.RATCHET_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const ROWS = env('BENCH_PG_ROWS', 20_000)
const ROUNDS = env('BENCH_PG_ROUNDS', 3)
const OPS: Record<number, number> = { 1: env('BENCH_PG_OPS_1', 3000), 32: env('BENCH_PG_OPS_32', 500) }
/** A durable commit waits for the disk (about 6 ms here): fewer statements make the run. */
const DURABLE_SHARE = 0.2
type CommitMode = 'durable' | 'async'
/** Comma lists, to run a part (e.g. one driver under callgrind). */
const list = (name: string, fallback: string) => (process.env[name] ?? fallback).split(',')
const MODES = list('BENCH_PG_MODES', 'durable,async') as CommitMode[]
const BATCHES = list('BENCH_PG_BATCHES', '1,32').map(Number)
const DRIVERS = list('BENCH_PG_DRIVERS', 'pg,postgres')
const WARMUP = env('BENCH_PG_WARMUP', 50)
const T0 = Date.UTC(2030, 0, 1)

/** One driver, reduced to what the adapter needs: a named prepared statement with values. */
interface Driver {
  name: string
  run<R>(statement: { name: string; text: string }, values: unknown[]): Promise<R[]>
  end(): Promise<void>
}

async function pgDriver(url: string, mode: CommitMode): Promise<Driver> {
  const client = new pg.Client({
    connectionString: url,
    types: typeParsers,
    options: `${SESSION_OPTIONS}${mode === 'async' ? ' -c synchronous_commit=off' : ''}`,
  })
  await client.connect()
  return {
    name: 'pg 8.23',
    run: async <R>(s: { name: string; text: string }, values: unknown[]) =>
      (await client.query({ name: s.name, text: s.text, values })).rows as R[],
    end: () => client.end(),
  }
}

function postgresDriver(url: string, mode: CommitMode): Driver {
  const sql = postgres(url, {
    max: 1,
    connection: {
      jit: 'off',
      plan_cache_mode: 'force_generic_plan',
      ...(mode === 'async' ? { synchronous_commit: 'off' } : {}),
    },
    prepare: true,
    onnotice: () => {},
    // int8 as numbers, as the adapter's pool gives them.
    types: {
      int8: {
        to: 20,
        from: [20],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  })
  return {
    name: 'postgres 4.2',
    run: async <R>(s: { name: string; text: string }, values: unknown[]) =>
      (await sql.unsafe(s.text, values as never[], { prepare: true })) as unknown as R[],
    end: () => sql.end(),
  }
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN

interface Measurement {
  driver: string
  mode: CommitMode
  batch: number
  statementsPerSecond: number
  executionsPerSecond: number
  claim: { p50: number; p99: number }
  settle: { p50: number; p99: number }
  /** This process's CPU (user + system) per statement, µs: the driver's own cost, steadier than wall time. */
  cpuPerStatementUs: number
}

async function refill(admin: InstanceType<typeof pg.Client>): Promise<void> {
  await admin.query('TRUNCATE executions, execution_history')
  await admin.query(
    `INSERT INTO executions (id, task_id, status, input, max_attempts, timeout_ms, backoff, run_at, created_at, updated_at)
     SELECT gen_random_uuid(), 'bench', 'queued', '{}', 3, 60000, '{}', $1::bigint + g, $1, $1
       FROM generate_series(1, $2::int) g`,
    [T0, ROWS],
  )
  await admin.query('VACUUM ANALYZE executions')
}

async function measure(driver: Driver, mode: CommitMode, batch: number, ops: number): Promise<Measurement> {
  const claims: number[] = []
  const settles: number[] = []
  const request = { owner: 'bench', now: T0 + ROWS, leaseMs: 30_000, limit: batch, taskIds: ['bench'] }
  let executions = 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < ops; i++) {
    let t = performance.now()
    const claimed = await driver.run<{ id: string; runs: number }>(CLAIM, claimValues(request, 0, null))
    claims.push(performance.now() - t)
    if (claimed.length === 0) throw new Error('the queue ran dry: raise BENCH_PG_ROWS')
    const settlements = claimed.map((row) => ({
      transition: 'complete' as const,
      id: row.id,
      run: row.runs,
      output: '{"ok":true}',
    }))
    t = performance.now()
    await driver.run(APPLY_ALONE, applyValues(settlements, T0 + ROWS))
    settles.push(performance.now() - t)
    executions += claimed.length
  }
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  claims.sort((a, b) => a - b)
  settles.sort((a, b) => a - b)
  return {
    driver: driver.name,
    mode,
    batch,
    statementsPerSecond: (claims.length + settles.length) / seconds,
    executionsPerSecond: executions / seconds,
    claim: { p50: percentile(claims, 50), p99: percentile(claims, 99) },
    settle: { p50: percentile(settles, 50), p99: percentile(settles, 99) },
    cpuPerStatementUs: (used.user + used.system) / (claims.length + settles.length),
  }
}

const name = `ratchet_bench_${randomBytes(4).toString('hex')}`
const admin = new pg.Client({ connectionString: ADMIN_URL })
await admin.connect()
await admin.query(`CREATE DATABASE ${name}`)
const url = new URL(ADMIN_URL)
url.pathname = `/${name}`
const scratchUrl = url.toString()
const scratch = new pg.Client({ connectionString: scratchUrl })
try {
  const pool = new pg.Pool({ connectionString: scratchUrl, max: 1 })
  await migratePostgres(pool, POSTGRES_MIGRATIONS_FOLDER)
  await pool.end()
  await scratch.connect()
  const results: Measurement[] = []
  for (const mode of MODES) {
    for (const batch of BATCHES) {
      const ops = Math.round(OPS[batch]! * (mode === 'durable' ? DURABLE_SHARE : 1))
      for (let round = 0; round < ROUNDS; round++) {
        const opens = {
          pg: () => pgDriver(scratchUrl, mode),
          postgres: () => Promise.resolve(postgresDriver(scratchUrl, mode)),
        }
        for (const open of DRIVERS.map((d) => opens[d as keyof typeof opens])) {
          await refill(scratch)
          const driver = await open()
          try {
            // A short warm-up: prepare the statements, warm the JIT.
            if (WARMUP > 0) await measure(driver, mode, batch, WARMUP)
            const result = await measure(driver, mode, batch, ops)
            results.push(result)
            console.error(
              `${result.driver} ${mode} batch ${batch} round ${round + 1}: ${result.executionsPerSecond.toFixed(0)} executions/s`,
            )
          } finally {
            await driver.end()
          }
        }
      }
    }
  }
  const median = (driver: string, mode: CommitMode, batch: number) => {
    const runs = results
      .filter((r) => r.driver === driver && r.mode === mode && r.batch === batch)
      .sort((a, b) => a.executionsPerSecond - b.executionsPerSecond)
    return runs[Math.floor(runs.length / 2)]!
  }
  const ms = (value: number) => value.toFixed(3)
  console.log(
    `\n${ROWS} queued rows, one connection, median of ${ROUNDS} rounds (claim then settle, in a loop)\n`,
  )
  console.log(
    '| commit | batch | driver | statements/s | executions/s | claim p50 ms | claim p99 ms | settle p50 ms | settle p99 ms | client CPU µs/statement |',
  )
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const mode of MODES) {
    for (const batch of BATCHES) {
      for (const driver of results.map((r) => r.driver).filter((d, i, all) => all.indexOf(d) === i)) {
        const r = median(driver, mode, batch)
        console.log(
          `| ${mode} | ${batch} | ${driver} | ${r.statementsPerSecond.toFixed(0)} | ${r.executionsPerSecond.toFixed(0)} | ` +
            `${ms(r.claim.p50)} | ${ms(r.claim.p99)} | ${ms(r.settle.p50)} | ${ms(r.settle.p99)} | ${r.cpuPerStatementUs.toFixed(0)} |`,
        )
      }
    }
  }
} finally {
  await scratch.end().catch(() => {})
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.end()
}
