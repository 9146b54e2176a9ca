/**
 * Fresh PostgreSQL databases for the benchmark, on the server of BENCH_DATABASE_URL: each
 * measurement gets its own `ratchet_bench_<random>` (created empty, dropped after), as the peers'
 * harness recreates its database for every run. Plus the CPU time of processes, from /proc, to
 * say where a run's cores went (the replicas, the load generator, PostgreSQL).
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import pg from 'pg'

/** int8 as numbers on this pool only. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? Number : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
}

export interface BenchDatabase {
  name: string
  url: string
  query<Row extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>
  /** Closes this harness's connection and drops the database (ending what still uses it). */
  drop(): Promise<void>
}

async function withAdmin<T>(adminUrl: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end().catch(() => {})
  }
}

export async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `ratchet_bench_${randomBytes(5).toString('hex')}`
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`))
  const parsed = new URL(adminUrl)
  parsed.pathname = `/${name}`
  const url = parsed.toString()
  const pool = new pg.Pool({ connectionString: url, max: 2, types })
  pool.on('error', () => {})
  return {
    name,
    url,
    query: async <Row extends object>(text: string, params: unknown[] = []) =>
      (await pool.query<Row>(text, params)).rows,
    async drop() {
      await pool.end()
      await withAdmin(adminUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
      )
    },
  }
}

const TICKS_PER_SECOND = 100

/** User + system CPU seconds of a process so far (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces) in parentheses: utime is the 14th, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return 0
  }
}

/**
 * CPU seconds of every PostgreSQL server process so far (the postmaster and all backends, of
 * every database: other work on the machine counts too), plus those of backends that exited
 * (the postmaster's `cutime`/`cstime`).
 */
export function postgresCpuSeconds(): number {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      if (command !== 'postgres' && command !== 'postmaster') continue
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime, stime; for the postmaster (its parent is not postgres) also cutime, cstime.
      total += Number(fields[11]) + Number(fields[12])
      const parent = Number(fields[1])
      const parentCommand = (() => {
        try {
          const p = readFileSync(`/proc/${parent}/stat`, 'utf8')
          return p.slice(p.indexOf('(') + 1, p.lastIndexOf(')'))
        } catch {
          return ''
        }
      })()
      if (parentCommand !== 'postgres' && parentCommand !== 'postmaster')
        total += Number(fields[13]) + Number(fields[14])
    } catch {
      // it exited while we looked
    }
  }
  return total / TICKS_PER_SECOND
}
