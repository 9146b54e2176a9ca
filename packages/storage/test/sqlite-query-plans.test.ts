import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openSqliteStorage, SQLITE_MIGRATIONS_FOLDER, SqliteStorage, sqliteSchema } from '@ratchet/storage'

const T0 = Date.UTC(2030, 0, 1)

let dirs: string[] = []
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs = []
})

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-'))
  dirs.push(dir)
  return join(dir, 'ratchet.db')
}

interface Executed {
  sql: string
  params: unknown[]
}

/**
 * A real SqliteStorage whose connection records every statement it executes, with its
 * parameters, so the test explains exactly the SQL that drizzle generated and ran.
 */
function openRecordingStorage(filename: string): {
  storage: SqliteStorage
  client: Database.Database
  executed: Executed[]
} {
  openSqliteStorage({ filename }).db.$client.close() // creates and migrates the file
  const client = new Database(filename)
  const executed: Executed[] = []
  const prepare = client.prepare.bind(client)
  client.prepare = ((source: string) => {
    const statement = prepare(source)
    for (const method of ['all', 'get', 'run', 'iterate'] as const) {
      const original = (statement[method] as (...params: unknown[]) => unknown).bind(statement)
      Object.assign(statement, {
        [method]: (...params: unknown[]) => {
          executed.push({ sql: source, params })
          return original(...params)
        },
      })
    }
    return statement
  }) as typeof client.prepare
  const storage = new SqliteStorage(drizzle({ client, schema: sqliteSchema }))
  return { storage, client, executed }
}

function execution(i: number): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: `task-${i % 4}`,
    input: '{}',
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 1000,
    backoff: { initialMs: 1, factor: 2, maxMs: 10 },
    priority: i % 3,
    idempotencyKey: null,
    runAt: T0 - 10_000 + i,
  }
}

/** Some queued, running and finished rows, so the planner sees a realistic table. */
async function populate(storage: SqliteStorage): Promise<void> {
  await storage.enqueue(
    Array.from({ length: 2000 }, (_, i) => execution(i)),
    T0 - 10_000,
  )
  const running = (
    await storage.claim({
      owner: 'w',
      now: T0,
      leaseMs: 1000,
      limit: 600,
      taskIds: ['task-0', 'task-1', 'task-2'],
    })
  ).claimed
  await storage.settle(
    running
      .slice(0, 400)
      .map((r) => ({ transition: 'complete' as const, id: r.id, run: r.runs, output: '1' })),
    T0,
  )
}

function plan(client: Database.Database, { sql, params }: Executed): string[] {
  return client
    .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
    .all(...params)
    .map((row) => row.detail)
}

async function explainCalls(run: () => Promise<unknown>, executed: Executed[]): Promise<Executed[]> {
  const from = executed.length
  await run()
  return executed.slice(from)
}

describe.each([
  ['without statistics', false],
  ['after ANALYZE', true],
])('sqlite query plans %s', (_title, analyze) => {
  it('the claim seeks executions_claim_idx once per task, in order, with no sort', async () => {
    const { storage, client, executed } = openRecordingStorage(tempFile())
    await populate(storage)
    if (analyze) client.exec('ANALYZE')
    const calls = await explainCalls(
      () => storage.claim({ owner: 'w', now: T0, leaseMs: 1000, limit: 10, taskIds: ['task-0', 'task-3'] }),
      executed,
    )
    // The skip-scan finding the tasks with queued work seeks the index too.
    const skips = calls.filter((c) => /task_id > @after/.test(c.sql))
    expect(skips.length).toBeGreaterThanOrEqual(1)
    for (const skip of skips) {
      expect(
        plan(client, skip).some((d) =>
          /USING (COVERING )?INDEX executions_claim_idx \(status=\? AND task_id>\?\)/.test(d),
        ),
      ).toBe(true)
    }
    const heads = calls.filter((c) => /task_id = @taskId/.test(c.sql))
    expect(heads.length).toBeGreaterThanOrEqual(1) // one per task with queued work
    for (const head of heads) {
      const details = plan(client, head)
      expect(
        details.some((d) =>
          /USING (COVERING )?INDEX executions_claim_idx \(status=\? AND task_id=\?/.test(d),
        ),
      ).toBe(true)
      expect(details.filter((d) => d.includes('TEMP B-TREE'))).toEqual([])
    }
    // Due rows are read by a range seek per priority (run_at bounded by now): executions
    // scheduled for later are never visited, however many there are.
    const dueReads = heads.filter((c) => /run_at <= @now/.test(c.sql))
    expect(dueReads.length).toBeGreaterThanOrEqual(1)
    for (const read of dueReads) {
      expect(
        plan(client, read).some((d) =>
          /USING (COVERING )?INDEX executions_claim_idx \(status=\? AND task_id=\? AND priority=\? AND run_at<\?\)/.test(
            d,
          ),
        ),
      ).toBe(true)
    }
    const update = calls.filter((c) => /^\s*update "?executions"?/i.test(c.sql))
    expect(update).toHaveLength(1)
    const details = plan(client, update[0]!)
    expect(details.filter((d) => /^SCAN executions\b/.test(d))).toEqual([])
    await storage.close()
  })

  it('cancelling the children a parent awaited, and rerunning them, walk the tree, not the backlog', async () => {
    const { storage, client, executed } = openRecordingStorage(tempFile())
    await populate(storage)
    const [parent] = (
      await storage.claim({
        owner: 'w',
        now: T0,
        leaseMs: 1000,
        limit: 1,
        taskIds: ['task-3'],
      })
    ).claimed
    await storage.enqueue(
      Array.from({ length: 20 }, (_, i) => ({
        ...execution(i),
        parentId: parent!.id,
        rootId: parent!.id,
        wakesParent: true,
      })),
      T0,
    )
    if (analyze) client.exec('ANALYZE')
    const error = JSON.stringify({ name: 'CancelledError', message: 'x', retryable: false })
    const calls = await explainCalls(
      () =>
        storage.settle(
          [{ transition: 'fail', id: parent!.id, run: 1, error, cancelChildren: { error } }],
          T0 + 1,
        ),
      executed,
    )
    // A rerun walks the children its end cancelled the same way.
    calls.push(...(await explainCalls(() => storage.rerun(parent!.id, T0 + 2), executed)))
    const walks = calls.filter((c) => /WITH RECURSIVE tree/.test(c.sql))
    expect(walks).toHaveLength(2)
    for (const walk of walks) {
      // Each tree member is looked up by id; the backlog of unfinished executions is never read.
      const reads = plan(client, walk).filter((d) => /\b(SCAN|SEARCH) e\b/.test(d))
      expect(reads.length).toBeGreaterThan(0)
      for (const read of reads) expect(read).toMatch(/^SEARCH e USING .*\b(parent_id=\?|id=\?)/)
    }
    await storage.close()
  })

  it("a child's end in its parent's record, lease recovery's progress check, a replay's read and a rerun's forgetting each seek an index", async () => {
    const { storage, client, executed } = openRecordingStorage(tempFile())
    await populate(storage)
    await storage.enqueue([{ ...execution(0), taskId: 'parent' }], T0)
    const claimParent = async (now: number) =>
      (await storage.claim({ owner: 'w', now, leaseMs: 1000, limit: 1, taskIds: ['parent'] })).claimed[0]!
    const parent = await claimParent(T0)
    const kids = Array.from({ length: 3 }, (_, i) => ({
      ...execution(i),
      taskId: 'kid',
      parentId: parent.id,
      rootId: parent.id,
      wakesParent: true,
    }))
    const none = { value: null, error: null, wakeAt: null, signalName: null, wakeupKey: null }
    await storage.recordSteps(
      kids.map((child, position) => ({
        executionId: parent.id,
        run: 1,
        step: {
          ...none,
          position,
          name: `kid-${position}`,
          kind: 'child' as const,
          status: 'waiting' as const,
          childId: child.id,
        },
        child,
      })),
      T0,
    )
    const [kid] = (await storage.claim({ owner: 'w', now: T0, leaseMs: 1000, limit: 1, taskIds: ['kid'] }))
      .claimed
    // The running rows of populate() recorded steps: 10 each, so the records outnumber them.
    const running = await storage.list({ statuses: ['running'], limit: 200 })
    await storage.recordSteps(
      running.flatMap((row) =>
        Array.from({ length: 10 }, (_, position) => ({
          executionId: row.id,
          run: row.runs,
          step: {
            ...none,
            position,
            name: `s${position}`,
            kind: 'step' as const,
            status: 'done' as const,
            childId: null,
            value: '1',
          },
        })),
      ),
      T0,
    )
    expect(running.length).toBeGreaterThan(100)
    if (analyze) client.exec('ANALYZE')
    const error = JSON.stringify({ name: 'Error', message: 'x', retryable: false })
    const calls = await explainCalls(
      () =>
        storage.settle(
          [
            {
              transition: 'complete',
              id: kid!.id,
              run: 1,
              output: '1',
              wakeParentId: parent.id,
              parentRecord: {
                parentId: parent.id,
                position: kids.findIndex((k) => k.id === kid!.id),
                outcome: { status: 'done', value: '1' },
              },
            },
          ],
          T0 + 1,
        ),
      executed,
    )
    // Every lease of the 200 running rows expired: each one's progress is checked.
    calls.push(
      ...(await explainCalls(
        () => storage.recoverLeases({ now: T0 + 10_000, error, exhaustedError: () => error, limit: 1000 }),
        executed,
      )),
    )
    calls.push(...(await explainCalls(() => storage.loadRunState(parent.id), executed)))
    // Recovered above: its next run fails, and is rerun.
    const again = await claimParent(T0 + 10_000)
    await storage.settle([{ transition: 'fail', id: again.id, run: 2, error }], T0 + 10_001)
    const rerun = await explainCalls(() => storage.rerun(parent.id, T0 + 10_002), executed)
    expect((await storage.get(parent.id))?.status).toBe('queued')
    calls.push(...rerun)

    const touching = calls.filter(
      (c) => /execution_steps|execution_history|EXISTS/.test(c.sql) && !/^insert/i.test(c.sql),
    )
    expect(touching.some((c) => /^UPDATE execution_steps/.test(c.sql.trim()))).toBe(true) // the parent's record
    expect(touching.some((c) => /EXISTS \(SELECT 1 FROM execution_steps/.test(c.sql))).toBe(true) // progress
    expect(touching.some((c) => /\$\.failedStep\.position/.test(c.sql))).toBe(true) // the rerun's read
    for (const call of touching) {
      const details = plan(client, call)
      // No full read of a table: executions, their steps and their history are each sought by key.
      expect(
        details.filter((d) => /^SCAN (e|s|c|executions|execution_steps|execution_history)\b/.test(d)),
        call.sql,
      ).toEqual([])
    }
    await storage.close()
  })

  it('nextDueAt reads the due, waiting and deadline indexes, one row each, and sorts nothing', async () => {
    const { storage, client, executed } = openRecordingStorage(tempFile())
    await populate(storage)
    if (analyze) client.exec('ANALYZE')
    const calls = await explainCalls(() => storage.nextDueAt(['task-0', 'task-3']), executed)
    expect(calls).toHaveLength(1)
    const details = plan(client, calls[0]!)
    for (const index of ['executions_due_idx', 'executions_waiting_due_idx', 'executions_deadline_idx'])
      expect(details.some((d) => new RegExp(`executions USING (COVERING )?INDEX ${index}\\b`).test(d))).toBe(
        true,
      )
    expect(
      details.filter((d) => d.includes('TEMP B-TREE') || /^SCAN executions\b(?! USING)/.test(d)),
    ).toEqual([])
    expect(await storage.nextDueAt(['task-3'])).toBe(T0 - 10_000 + 3)
    await storage.close()
  })

  it('housekeep walks the waiting and deadline indexes in order, with no sort', async () => {
    const { storage, client, executed } = openRecordingStorage(tempFile())
    await populate(storage)
    if (analyze) client.exec('ANALYZE')
    const calls = await explainCalls(() => storage.housekeep(T0, 100), executed)
    const reads = calls.filter((c) => /^SELECT/i.test(c.sql.trim()))
    expect(reads).toHaveLength(2)
    const details = reads.flatMap((c) => plan(client, c))
    for (const index of ['executions_waiting_due_idx', 'executions_deadline_idx'])
      expect(details.some((d) => new RegExp(`executions USING (COVERING )?INDEX ${index}\\b`).test(d))).toBe(
        true,
      )
    expect(details.filter((d) => d.includes('TEMP B-TREE'))).toEqual([])
    await storage.close()
  })
})

describe('sqlite migrations', () => {
  const tables = (client: Database.Database) =>
    client
      .prepare<[], { name: string }>(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .all()
      .map((r) => r.name)
  const applied = (client: Database.Database) =>
    client
      .prepare<[], { hash: string; created_at: number }>(
        'SELECT hash, created_at FROM __drizzle_migrations ORDER BY id',
      )
      .all()

  it('apply to a fresh file', async () => {
    const filename = tempFile()
    const storage = openSqliteStorage({ filename })
    const client = storage.db.$client
    expect(tables(client)).toEqual(
      expect.arrayContaining([
        'executions',
        'execution_history',
        'executions_claim_idx',
        'executions_due_idx',
        'executions_idempotency_key_uq',
        'executions_status_idx',
        'executions_task_idx',
        'execution_history_execution_idx',
      ]),
    )
    expect(applied(client)).toHaveLength(
      readdirSync(join(SQLITE_MIGRATIONS_FOLDER)).filter((f) => f.endsWith('.sql')).length,
    )
    expect(client.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(client.pragma('foreign_keys', { simple: true })).toBe(1)
    await storage.close()
  })

  it('re-opening an existing file applies nothing and keeps its data', async () => {
    const filename = tempFile()
    const first = openSqliteStorage({ filename })
    const [outcome] = await first.enqueue([execution(1)], T0)
    const schemaBefore = tables(first.db.$client)
    const migrationsBefore = applied(first.db.$client)
    await first.close()

    const second = openSqliteStorage({ filename })
    expect(tables(second.db.$client)).toEqual(schemaBefore)
    expect(applied(second.db.$client)).toEqual(migrationsBefore)
    expect(await second.get(outcome!.row.id)).toEqual(outcome!.row)
    expect(await second.history(outcome!.row.id)).toHaveLength(1)
    await second.close()
  })
})
