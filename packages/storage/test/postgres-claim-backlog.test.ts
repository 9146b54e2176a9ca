/**
 * The claim under a backlog: 20,000 executions due at once (a queue that fell behind, or the
 * benchmark's pre-filled queue). A claim of 100 must read about 100 rows, not the whole due
 * backlog, under the generic plan the adapter's sessions use, both on a table never analyzed
 * (a fresh database) and once analyzed. Under the generic plan the claim's lookup of its chosen
 * rows by id was once planned as a hash join over every due row: each claim read all 20,000,
 * so draining a backlog cost time quadratic in its length.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { CLAIM, claimValues } from '../src/postgres/claim'
import { SESSION_OPTIONS } from '../src/postgres/database'
import { examined, plansOf as explainPlans, seqScans, type Plan } from './postgres-explain'

const T0 = Date.UTC(2032, 0, 1)
const BACKLOG = 20_000
const db = await usePostgresTestDatabase()

let explainer: pg.Client
/** A session like the adapter's, whose claim was prepared (and planned) on the empty table. */
let early: pg.Client
let storage: PostgresStorage
const plansOf = (run: () => Promise<unknown>): Promise<Plan[]> => explainPlans(explainer, run)

function execution(i: number): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: 'backlog',
    input: `{"i":${i}}`,
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1, factor: 2, maxMs: 10 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0 - 1000,
    deadlineAt: null,
  }
}

const request = () => ({ owner: 'w', now: T0, leaseMs: 60_000, limit: 100, taskIds: ['backlog', 'idle'] })

/** CLAIM's bound values as SQL literals, for EXECUTE (a utility statement takes no parameters). */
function literals(values: unknown[]): string {
  return values
    .map((v) =>
      v === null
        ? 'NULL'
        : Array.isArray(v)
          ? early.escapeLiteral(`{${v.join(',')}}`)
          : typeof v === 'string'
            ? early.escapeLiteral(v)
            : String(v as number),
    )
    .join(', ')
}

interface PlanNode {
  'Relation Name'?: string
  'Actual Rows': number
  'Actual Loops': number
  'Rows Removed by Filter'?: number
  'Rows Removed by Join Filter'?: number
  Plans?: PlanNode[]
}

/** Rows of `executions` the plan's scans read (returned or filtered out), and rows its joins threw away. */
function rowsRead(node: PlanNode): number {
  const own =
    (node['Relation Name'] === 'executions'
      ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops']
      : 0) + (node['Rows Removed by Join Filter'] ?? 0)
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child), 0)
}

const claim100 = () => storage.claim(request())

describe.skipIf(!db.available)('postgres claim under a due backlog', () => {
  beforeAll(async () => {
    storage = await openPostgresStorage({ url: db.url, leaseClock: 'caller', poolSize: 2 })
    explainer = new pg.Client({ connectionString: db.url })
    await explainer.connect()
    early = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS })
    await early.connect()
    await early.query(`PREPARE early_claim AS ${CLAIM.text}`)
    await early.query(`EXECUTE early_claim(${literals(claimValues(request(), 0, T0))})`)
    for (let batch = 0; batch < BACKLOG / 1000; batch++)
      await storage.enqueue(
        Array.from({ length: 1000 }, (_, i) => execution(batch * 1000 + i)),
        T0 - 2000,
      )
  }, 120_000)

  afterAll(async () => {
    await early?.end()
    await explainer?.end()
    await storage?.close()
  })

  // First, before an ANALYZE (which makes sessions plan their statements again).
  it('a claim planned on the empty table (as a server starting on a new database plans it) reads about 100 rows', async () => {
    await early.query('BEGIN')
    try {
      const { rows } = await early.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE early_claim(${literals(claimValues(request(), 0, T0))})`,
      )
      expect(rowsRead(rows[0]!['QUERY PLAN'][0].Plan)).toBeLessThan(1_000)
    } finally {
      await early.query('ROLLBACK')
    }
  })

  // Each claim is explained after it ran, on the 19,900 (then 19,800) still due.
  for (const analyzed of [false, true])
    it(`a claim of 100 reads about 100 rows, not the ${BACKLOG} due (table ${analyzed ? '' : 'never '}analyzed)`, async () => {
      if (analyzed) await db.query('ANALYZE executions')
      const plans = await plansOf(claim100)
      expect(seqScans(plans)).toEqual([])
      // The per-priority probes, 400 candidates (4 × limit), the 100 chosen and the 100 updated.
      const read = examined(plans, 'executions')
      expect(read.generic, 'generic plan').toBeLessThan(1_000)
      expect(read.custom, 'custom plan').toBeLessThan(1_000)
    })

  it('a claim whose candidates another transaction holds comes back short and not drained', async () => {
    // The explainer's transaction locks the first 400 due rows (every candidate of a claim of 100).
    await explainer.query('BEGIN')
    try {
      await explainer.query(
        `SELECT id FROM executions WHERE status = 'queued' ORDER BY run_at, id LIMIT 400 FOR UPDATE`,
      )
      const { claimed, drained } = await claim100()
      expect(claimed).toEqual([])
      expect(drained).toBe(false)
    } finally {
      await explainer.query('ROLLBACK')
    }
  })

  it('claims the backlog in order, 100 at a time, each row once', async () => {
    const seen = new Set<string>()
    let previous = ''
    for (;;) {
      const { claimed, drained } = await claim100()
      expect(drained, 'drained only once fewer than 100 were left').toBe(claimed.length < 100)
      if (claimed.length === 0) break
      for (const row of claimed) {
        expect(seen.has(row.id)).toBe(false)
        expect(row.id > previous, 'oldest first').toBe(true)
        seen.add(row.id)
        previous = row.id
      }
    }
    // The two claims explained above ran for real too.
    expect(seen.size).toBe(BACKLOG - 200)
  }, 120_000)
})
