/**
 * Retention on PostgreSQL with several replicas: purges running at once share the work (each
 * row deleted and counted once), and a purge racing a rerun of the tree it is deleting never
 * deletes from a tree that came back to life: the rerun either finds the execution gone, or
 * reruns it with every row it had.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution, type PurgeRequest } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'

const T0 = Date.UTC(2032, 0, 1)
const DAY = 86_400_000
const db = await usePostgresTestDatabase()

function execution(overrides: Partial<NewExecution> = {}): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: 'alpha',
    input: '{}',
    maxAttempts: 1,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1, factor: 2, maxMs: 10 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0,
    ...overrides,
  }
}

const purgeAt = (now: number, limit = 500): PurgeRequest => ({
  now,
  defaultRetentionMs: DAY,
  retentionByTask: {},
  limit,
})

describe.skipIf(!db.available)('postgres retention with several replicas', () => {
  let replicas: PostgresStorage[] = []
  beforeEach(async () => {
    await db.reset()
    replicas = await Promise.all(
      [1, 2, 3].map(() => openPostgresStorage({ url: db.url, leaseClock: 'caller', poolSize: 2 })),
    )
  })
  afterEach(async () => {
    for (const replica of replicas) await replica.close()
  })

  /** `n` trees of `alpha` (a root and two children, all ended by `settlement`) finished at T0. */
  async function finishedTrees(n: number, settlement: 'complete' | 'fail'): Promise<string[]> {
    const [storage] = replicas
    const roots = Array.from({ length: n }, () => execution())
    await storage!.enqueue(roots, T0)
    await storage!.enqueue(
      roots.flatMap((r) => [0, 1].map(() => execution({ taskId: 'beta', parentId: r.id, rootId: r.id }))),
      T0,
    )
    for (const taskId of ['beta', 'alpha']) {
      const { claimed } = await storage!.claim({
        owner: 'w',
        now: T0,
        leaseMs: DAY,
        limit: 1000,
        taskIds: [taskId],
      })
      await storage!.settle(
        claimed.map((r) =>
          settlement === 'complete'
            ? { transition: 'complete' as const, id: r.id, run: r.runs, output: '1' }
            : { transition: 'fail' as const, id: r.id, run: r.runs, error: '{"message":"no"}' },
        ),
        T0,
      )
    }
    // A later change: the tree holding the newest history row is kept.
    await storage!.enqueue([execution({ taskId: 'later' })], T0)
    return roots.map((r) => r.id)
  }

  it('purges running at once share the work: every row deleted and counted once', async () => {
    const roots = await finishedTrees(30, 'complete')
    const before = await db.query<{ n: number }>('SELECT count(*) AS n FROM execution_history')
    const totals = { executions: 0, history: 0 }
    await Promise.all(
      replicas.map(async (replica) => {
        for (;;) {
          const outcome = await replica.purge(purgeAt(T0 + 2 * DAY, 40))
          totals.executions += outcome.executions
          totals.history += outcome.history
          if (!outcome.more) return
        }
      }),
    )
    expect(totals.executions).toBe(roots.length * 3)
    const [left] = await db.query<{ n: number }>('SELECT count(*) AS n FROM execution_history')
    expect(totals.history).toBe(before[0]!.n - left!.n)
    expect(await db.query('SELECT id FROM executions WHERE task_id <> $1', ['later'])).toEqual([])
  })

  it('a rerun racing a purge finds the tree gone, or reruns it and keeps it: nothing is deleted after', async () => {
    const roots = await finishedTrees(20, 'fail')
    const rowsOf = async (id: string) =>
      (
        await db.query<{ n: number }>(
          `SELECT (SELECT count(*) FROM execution_history WHERE execution_id = $1)
                + (SELECT count(*) FROM executions WHERE id = $1 OR root_id = $1) AS n`,
          [id],
        )
      )[0]!.n
    const purging = (async () => {
      while ((await replicas[0]!.purge(purgeAt(T0 + 2 * DAY, 7))).more);
    })()
    const outcomes = await Promise.all(roots.map((id) => replicas[1]!.rerun(id, T0 + 2 * DAY)))
    await purging
    // A purge after the reruns: the rerun trees are live, nothing of them goes.
    await replicas[2]!.purge(purgeAt(T0 + 2 * DAY))
    for (const [i, outcome] of outcomes.entries()) {
      const id = roots[i]!
      if (outcome === undefined) {
        // The root goes last, with its own rows: nothing of the tree is left.
        expect(await rowsOf(id), id).toBe(0)
        continue
      }
      // Rerun: a tree may have lost members to an earlier purge call (a tree larger than a call's
      // limit goes over several), never the root nor a row written since.
      expect(outcome.rerunFrom, id).toBe('failed')
      expect(await replicas[2]!.get(id), id).toMatchObject({ status: 'queued' })
      expect((await replicas[2]!.history(id)).at(-1), id).toMatchObject({ from: 'failed', to: 'queued' })
    }
  })
})
