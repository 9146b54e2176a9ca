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
import { examined, plansOf as explainPlans, seqScans, type Plan } from './postgres-explain'

const T0 = Date.UTC(2032, 0, 1)
const BACKLOG = 20_000
const db = await usePostgresTestDatabase()

let explainer: pg.Client
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

const claim100 = () =>
  storage.claim({ owner: 'w', now: T0, leaseMs: 60_000, limit: 100, taskIds: ['backlog', 'idle'] })

describe.skipIf(!db.available)('postgres claim under a due backlog', () => {
  beforeAll(async () => {
    storage = await openPostgresStorage({ url: db.url, leaseClock: 'caller', poolSize: 2 })
    explainer = new pg.Client({ connectionString: db.url })
    await explainer.connect()
    for (let batch = 0; batch < BACKLOG / 1000; batch++)
      await storage.enqueue(
        Array.from({ length: 1000 }, (_, i) => execution(batch * 1000 + i)),
        T0 - 2000,
      )
  }, 120_000)

  afterAll(async () => {
    await explainer?.end()
    await storage?.close()
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
