import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution, type Storage } from '@ratchet/core'
import { openPostgresStorage, openSqliteStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { childRecord, stepRecord, storedError, T0, wakeupRecord } from '../src/conformance/fixtures'

// The PostgreSQL adapter batches what SQLite does one write at a time (a settle batch is one
// statement plus its side effects; a fan-out of step records is one statement per kind). Here
// the same calls run on both adapters and must leave the same rows, records and history
// (seqs aside): the cases where batching could reorder effects, one execution after another.
const pg = await usePostgresTestDatabase()

const LEASE_MS = 30_000
const P = 0 // the parent's index in `ids`
type Scenario = (
  s: Storage,
  ids: readonly string[],
  log: (label: string, value: unknown) => void,
) => Promise<void>

function execution(id: string, taskId: string, overrides: Partial<NewExecution> = {}): NewExecution {
  return {
    id,
    taskId,
    input: '{}',
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0,
    ...overrides,
  }
}

const claimAll = (s: Storage, taskIds: string[], now = T0) =>
  s.claim({ owner: 'w', now, leaseMs: LEASE_MS, limit: 100, taskIds })

/** A running parent `ids[0]` (task `parent`) awaiting `kids` running children `ids[1..]` (task `kid`). */
async function family(s: Storage, ids: readonly string[], kids: number, parent: Partial<NewExecution> = {}) {
  await s.enqueue([execution(ids[P]!, 'parent', parent)], T0)
  await claimAll(s, ['parent'])
  await s.recordSteps(
    Array.from({ length: kids }, (_, i) => ({
      executionId: ids[P]!,
      run: 1,
      step: childRecord(i, ids[1 + i]!),
      child: { ...execution(ids[1 + i]!, 'kid'), parentId: ids[P]!, wakesParent: true },
    })),
    T0,
  )
  await claimAll(s, ['kid'])
}

const kidDone = (ids: readonly string[], i: number) => ({
  transition: 'complete' as const,
  id: ids[1 + i]!,
  run: 1,
  output: `"kid ${i}"`,
  wakeParentId: ids[P]!,
  parentRecord: { parentId: ids[P]!, position: i, outcome: { status: 'done' as const, value: `"kid ${i}"` } },
})
const parentPark = (ids: readonly string[], run = 1) => ({
  transition: 'park' as const,
  id: ids[P]!,
  run,
  runAt: T0 + 5000,
})
const parentFail = (ids: readonly string[]) => ({
  transition: 'fail' as const,
  id: ids[P]!,
  run: 1,
  error: storedError('parent failed'),
  cancelChildren: { error: storedError('parent ended') },
})

const scenarios: Record<string, Scenario> = {
  'a child ends, then its parent parks, in one batch': async (s, ids, log) => {
    await family(s, ids, 2)
    log('settle', await s.settle([kidDone(ids, 0), parentPark(ids)], T0 + 1))
  },
  'a parent parks, then its child ends, in one batch': async (s, ids, log) => {
    await family(s, ids, 2)
    log('settle', await s.settle([parentPark(ids), kidDone(ids, 0)], T0 + 1))
  },
  'a parent fails (cancelling its children), then a child ends, in one batch': async (s, ids, log) => {
    await family(s, ids, 2)
    log('settle', await s.settle([parentFail(ids), kidDone(ids, 0)], T0 + 1))
  },
  'a child ends, then its parent fails, in one batch': async (s, ids, log) => {
    await family(s, ids, 2)
    log('settle', await s.settle([kidDone(ids, 0), parentFail(ids)], T0 + 1))
  },
  'a child ends, then its parent continues as new, in one batch': async (s, ids, log) => {
    await family(s, ids, 2)
    await s.signal(ids[P]!, 'go', '1', T0)
    const cont = { transition: 'continue' as const, id: ids[P]!, run: 1, input: '{"n":2}' }
    log(
      'settle',
      await s.settle([kidDone(ids, 0), { ...cont, cancelChildren: { error: storedError('x') } }], T0 + 1),
    )
  },
  'a parent continues as new, then its child ends, in one batch': async (s, ids, log) => {
    await family(s, ids, 2)
    const cont = { transition: 'continue' as const, id: ids[P]!, run: 1, input: '{"n":2}' }
    log('settle', await s.settle([cont, kidDone(ids, 0), kidDone(ids, 1)], T0 + 1))
  },
  'several settlements of one execution in one batch: the first whose fence holds': async (s, ids, log) => {
    await s.enqueue([execution(ids[0]!, 'alpha'), execution(ids[1]!, 'alpha')], T0)
    await claimAll(s, ['alpha'])
    log(
      'settle',
      await s.settle(
        [
          { transition: 'complete', id: ids[0]!, run: 2, output: '"stale"' },
          { transition: 'retry', id: ids[0]!, run: 1, error: storedError('e'), delayMs: 0 },
          { transition: 'complete', id: ids[0]!, run: 1, output: '"late"' },
          { transition: 'release', id: ids[1]!, run: 1, error: storedError('bye') },
          { transition: 'time_out', id: ids[1]!, run: 1, error: storedError('t') },
        ],
        T0 + 1,
      ),
    )
  },
  'a lost parent past its recovery budget: abandoned, its children cancelled': async (s, ids, log) => {
    await family(s, ids, 2, { maxRecoveries: 0 })
    // Only the parent's lease expires (the order in which lost runs are recovered is not the port's).
    await s.extendLeases(
      'w',
      [1, 2].map((i) => ({ id: ids[i]!, run: 1 })),
      T0 + LEASE_MS,
      LEASE_MS,
    )
    log(
      'recover',
      await s.recoverLeases({
        now: T0 + LEASE_MS + 1,
        error: storedError('lost'),
        exhaustedError: () => storedError('exhausted'),
        cancelChildrenError: storedError('parent ended'),
        limit: 10,
      }),
    )
  },
  'a cancel of a tree three deep, then a rerun of its failed root': async (s, ids, log) => {
    await family(s, ids, 2)
    // a grandchild below the first child
    await s.recordSteps(
      [
        {
          executionId: ids[1]!,
          run: 1,
          step: childRecord(0, ids[5]!),
          child: { ...execution(ids[5]!, 'grandkid'), parentId: ids[1]!, wakesParent: true },
        },
      ],
      T0,
    )
    log('fail', await s.settle([parentFail(ids)], T0 + 1))
    log('rerun', await s.rerun(ids[P]!, T0 + 2))
    log('cancel', await s.cancel(ids[P]!, T0 + 3, storedError('stop'), storedError('stop below')))
  },
  'a fan-out of step records, children and a consumed signal, then records with wakeup keys': async (
    s,
    ids,
    log,
  ) => {
    await s.enqueue([execution(ids[P]!, 'parent')], T0)
    await claimAll(s, ['parent'])
    const stored = await s.signal(ids[P]!, 'go', '"payload"', T0)
    const seq = stored.result === 'stored' ? stored.seq : -1
    log(
      'fan-out',
      await s.recordSteps(
        [
          { executionId: ids[P]!, run: 1, step: stepRecord(0) },
          {
            executionId: ids[P]!,
            run: 1,
            step: stepRecord(1, { name: 'go', kind: 'signal', value: '"payload"', signalName: 'go' }),
            consumeSignalSeq: seq,
          },
          ...[2, 3, 4].map((position) => ({
            executionId: ids[P]!,
            run: 1,
            step: childRecord(position, ids[position]!),
            child: { ...execution(ids[position]!, 'kid'), parentId: ids[P]!, wakesParent: position !== 4 },
          })),
          { executionId: ids[P]!, run: 2, step: stepRecord(5) },
        ],
        T0 + 1,
      ),
    )
    log(
      'keys',
      await s.recordSteps(
        [
          { executionId: ids[P]!, run: 1, step: wakeupRecord(5, 'key-1') },
          { executionId: ids[P]!, run: 1, step: wakeupRecord(6, 'key-1') },
          { executionId: ids[P]!, run: 1, step: { ...wakeupRecord(5, 'key-1'), status: 'done', value: '1' } },
          { executionId: ids[P]!, run: 1, step: { ...wakeupRecord(5, 'key-1'), status: 'done', value: '2' } },
        ],
        T0 + 2,
      ),
    )
  },
  'housekeeping wakes due sleepers and expires deadlines, waking a parent': async (s, ids, log) => {
    await family(s, ids, 2)
    await s.settle([parentPark(ids)], T0 + 1)
    await s.settle([{ transition: 'park', id: ids[1]!, run: 1, runAt: T0 + 100 }], T0 + 1)
    await s.enqueue([execution(ids[6]!, 'alpha', { runAt: T0 + 10_000, deadlineAt: T0 + 50 })], T0)
    log('housekeep', await s.housekeep(T0 + 200, 100))
  },
}

/** What a scenario left: every execution it made, with its record and history (seqs aside). */
async function transcript(s: Storage, ids: readonly string[], scenario: Scenario) {
  const log: [string, unknown][] = []
  await scenario(s, ids, (label, value) => log.push([label, value]))
  const executions = []
  for (const id of ids) {
    const row = await s.get(id)
    if (!row) continue
    const history = (await s.history(id)).map(({ seq: _seq, ...rest }) => rest)
    executions.push({ row, state: await s.loadRunState(id), history })
  }
  return { log, executions }
}

describe.skipIf(!pg.available)('PostgreSQL writes as SQLite writes them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-pg-vs-sqlite-'))
  let postgres: Storage
  beforeAll(async () => {
    postgres = await openPostgresStorage({ url: pg.url, leaseClock: 'caller', poolSize: 2 })
  })
  afterAll(async () => {
    await postgres?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  for (const [title, scenario] of Object.entries(scenarios)) {
    it(title, async () => {
      const ids = Array.from({ length: 8 }, () => newExecutionId(T0))
      const sqlite = openSqliteStorage({ filename: join(dir, `${ids[0]}.db`) })
      try {
        await pg.reset()
        const expected = await transcript(sqlite, ids, scenario)
        expect(await transcript(postgres, ids, scenario)).toEqual(expected)
      } finally {
        await sqlite.close()
      }
    })
  }
})
