/**
 * The PostgreSQL adapter's statements, explained on a table that holds far more than is due:
 * 20,000 queued executions an hour ahead (at two priorities, with deadlines two hours ahead),
 * 2,000 waiting ones an hour ahead, and a few of each due now. The claim and the due-timer
 * statements (housekeeping, nextDueAt) must read O(due) rows, never the future ones; the reads
 * of dashboards and change streams (list, history, changesSince, changeCursor, steps,
 * throughput, listEvents, purge) must walk their indexes. Each statement the storage
 * really ran is explained with EXPLAIN ANALYZE (inside a transaction rolled back), under both
 * the custom plan (what a statement's first runs get) and the generic plan (what a named
 * statement may settle on after five).
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { examined, indexes, most, plansOf as explainPlans, seqScans, type Plan } from './postgres-explain'

const T0 = Date.UTC(2032, 0, 1)
const HOUR = 3_600_000
const TASKS = ['task-0', 'task-1', 'task-2', 'task-3']
const db = await usePostgresTestDatabase()

let explainer: pg.Client
let storage: PostgresStorage
const plansOf = (run: () => Promise<unknown>): Promise<Plan[]> => explainPlans(explainer, run)

function execution(i: number, overrides: Partial<NewExecution> = {}): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: TASKS[i % TASKS.length]!,
    input: '{}',
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1, factor: 2, maxMs: 10 },
    priority: Math.floor(i / TASKS.length) % 2,
    idempotencyKey: null,
    runAt: T0 + HOUR,
    deadlineAt: T0 + 2 * HOUR,
    ...overrides,
  }
}

function step(position: number) {
  return {
    position,
    name: `s${position}`,
    kind: 'step' as const,
    status: 'done' as const,
    value: '1',
    error: null,
    wakeAt: null,
    childId: null,
    signalName: null,
    wakeupKey: null,
  }
}

/** Claims every due execution of `taskId` and parks it until `runAt`. */
async function claimAndPark(taskId: string, runAt: number): Promise<void> {
  const { claimed } = await storage.claim({
    owner: 'w',
    now: T0,
    leaseMs: HOUR,
    limit: 5000,
    taskIds: [taskId],
  })
  await storage.settle(
    claimed.map((r) => ({ transition: 'park' as const, id: r.id, run: r.runs, runAt })),
    T0,
  )
}

describe.skipIf(!db.available)('postgres query plans', () => {
  let rootId = ''
  beforeAll(async () => {
    storage = await openPostgresStorage({ url: db.url, leaseClock: 'caller', poolSize: 2 })
    explainer = new pg.Client({ connectionString: db.url })
    await explainer.connect()
    for (let batch = 0; batch < 20; batch++)
      await storage.enqueue(
        Array.from({ length: 1000 }, (_, i) => execution(batch * 1000 + i)),
        T0 - HOUR,
      )
    // Due now: three per (task, priority); five past their deadline.
    await storage.enqueue(
      Array.from({ length: 24 }, (_, i) => execution(i, { runAt: T0 - 1000 + i })),
      T0 - HOUR,
    )
    await storage.enqueue(
      Array.from({ length: 5 }, (_, i) => execution(i, { taskId: 'expiring', deadlineAt: T0 - 1 })),
      T0 - HOUR,
    )
    // Waiting: 2,000 an hour ahead, 3 due now.
    await storage.enqueue(
      Array.from({ length: 2000 }, (_, i) => execution(i, { taskId: 'sleeper', runAt: T0 - 5000 })),
      T0 - HOUR,
    )
    await claimAndPark('sleeper', T0 + HOUR)
    await storage.enqueue(
      Array.from({ length: 3 }, (_, i) => execution(i, { taskId: 'napper', runAt: T0 - 5000 })),
      T0 - HOUR,
    )
    await claimAndPark('napper', T0 - 10)
    // Finished: 400 completed, with a step and history each; a tree of 20 children.
    const done = Array.from({ length: 400 }, (_, i) => execution(i, { taskId: 'done', runAt: T0 - 5000 }))
    await storage.enqueue(done, T0 - HOUR)
    const { claimed } = await storage.claim({
      owner: 'w',
      now: T0,
      leaseMs: HOUR,
      limit: 400,
      taskIds: ['done'],
    })
    await storage.recordSteps(
      claimed.map((r) => ({ executionId: r.id, run: r.runs, step: step(0) })),
      T0 + 5,
    )
    await storage.settle(
      claimed.map((r) => ({ transition: 'complete' as const, id: r.id, run: r.runs, output: '1' })),
      T0 + 10,
    )
    rootId = done[0]!.id
    await storage.enqueue(
      Array.from({ length: 20 }, (_, i) => execution(i, { taskId: 'child', parentId: rootId, rootId })),
      T0,
    )
    for (let i = 0; i < 200; i++)
      await storage.publishEvent(
        {
          id: newExecutionId(T0),
          type: `type-${i % 5}`,
          payload: '{}',
          createdAt: T0 - i,
          executionIds: '[]',
          publishId: null,
        },
        [],
        T0,
      )
    await db.query('ANALYZE')
  }, 120_000)

  afterAll(async () => {
    await explainer?.end()
    await storage?.close()
  })

  // Each statement is explained after the call ran, on what it left: still due rows, and the
  // 22,000 ahead.
  it('the claim reads the due rows of each (task, priority), never the 20,000 ahead', async () => {
    const plans = await plansOf(() =>
      storage.claim({ owner: 'w', now: T0, leaseMs: 1000, limit: 10, taskIds: TASKS }),
    )
    expect(seqScans(plans)).toEqual([])
    expect(indexes(plans)).toContain('executions_claim_idx')
    // Per (task, priority): a probe or two of the index and its due rows (14 left), and the 10
    // rows updated: 50 read here under either plan, whatever the rows ahead.
    expect(most(examined(plans, 'executions'))).toBeLessThan(200)
  })

  it('housekeeping reads the due waiters and deadlines only', async () => {
    // 3 waiters woken, 2 of the 5 deadlines expired: 3 deadlines left due.
    const plans = await plansOf(() => storage.housekeep(T0, 5))
    expect(seqScans(plans)).toEqual([])
    expect(indexes(plans)).toContain('executions_waiting_due_idx')
    expect(indexes(plans)).toContain('executions_deadline_idx')
    expect(most(examined(plans, 'executions'))).toBeLessThan(50)
  })

  it('nextDueAt reads the first entry of each partial index, for served and unserved tasks alike', async () => {
    for (const taskIds of [TASKS, ['child'], ['nobody']]) {
      const plans = await plansOf(() => storage.nextDueAt(taskIds))
      expect(seqScans(plans), taskIds.join()).toEqual([])
      expect(most(examined(plans, 'executions')), taskIds.join()).toBeLessThan(50)
    }
  })

  it('list, history, steps, changesSince, changeCursor and listEvents walk their indexes', async () => {
    const newest = (await storage.list({ limit: 1 }))[0]!
    const reads: [string, () => Promise<unknown>, string | RegExp, number][] = [
      ['list', () => storage.list({ limit: 50 }), 'executions_pkey', 100],
      ['list by task', () => storage.list({ taskId: 'done', limit: 50 }), 'executions_task_idx', 100],
      ['list by parent', () => storage.list({ parentId: rootId, limit: 50 }), 'executions_parent_idx', 50],
      ['list by tree', () => storage.list({ rootId, limit: 50 }), 'executions_root_idx', 100],
      ['list before', () => storage.list({ beforeId: newest.id, limit: 50 }), 'executions_pkey', 100],
      ['history', () => storage.history(rootId), 'execution_history_execution_idx', 10],
      [
        'steps',
        () => storage.steps(rootId, { limit: 10 }),
        /^execution_steps_(execution_id_position_pk|name_uq)$/,
        10,
      ],
      ['changeCursor', () => storage.changeCursor(), 'execution_history_changes_idx', 10],
      [
        'changesSince',
        () => storage.changesSince({ after: '', limit: 50 }),
        'execution_history_changes_idx',
        110,
      ],
      ['listEvents', () => storage.listEvents({ type: 'type-1', limit: 10 }), 'events_type_idx', 20],
    ]
    for (const [name, run, index, rows] of reads) {
      const plans = await plansOf(run)
      expect(seqScans(plans), name).toEqual([])
      const used = [...indexes(plans)] as string[]
      expect(
        used.some((i) => (typeof index === 'string' ? i === index : index.test(i))),
        `${name}: ${used.join()}`,
      ).toBe(true)
      expect(most(examined(plans)), name).toBeLessThanOrEqual(rows)
    }
  })

  it('throughput and purge read their partial indexes', async () => {
    const throughput = await plansOf(() =>
      storage.throughput({ taskId: 'done', from: T0, to: T0 + HOUR, bucketMs: 60_000 }),
    )
    expect(seqScans(throughput)).toEqual([])
    expect(indexes(throughput)).toEqual(new Set(['executions_finished_idx', 'executions_started_idx']))
    const purge = await plansOf(() =>
      storage.purge({ now: T0 + 20, defaultRetentionMs: 5, retentionByTask: {}, limit: 50 }),
    )
    expect(seqScans(purge)).toEqual([])
    expect(indexes(purge)).toContain('executions_retention_idx')
  })
})
