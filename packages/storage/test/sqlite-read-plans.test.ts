/**
 * The read queries of dashboards and CLIs (taskStats, throughput, changesSince, changeCursor, list) and purge's
 * read indexes, never every row of the table: checked with EXPLAIN QUERY PLAN on the
 * statements the storage really runs, over a table with a realistic mix of rows.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openSqliteStorage, SqliteStorage, sqliteSchema } from '@ratchet/storage'

const T0 = Date.UTC(2030, 0, 1)
let dirs: string[] = []
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs = []
})

interface Executed {
  sql: string
  params: unknown[]
}

/** A SqliteStorage whose connection records every statement it runs, with its parameters. */
function openRecording() {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-'))
  dirs.push(dir)
  const filename = join(dir, 'ratchet.db')
  openSqliteStorage({ filename }).db.$client.close()
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
  return { storage: new SqliteStorage(drizzle({ client, schema: sqliteSchema })), client, executed }
}

function execution(i: number): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: `task-${i % 4}`,
    input: JSON.stringify({ pad: 'x'.repeat(200) }),
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 1000,
    backoff: { initialMs: 1, factor: 2, maxMs: 10 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0 - 10_000 + i,
  }
}

/** Plans of the statements `run` executes. */
async function plansOf(
  recording: ReturnType<typeof openRecording>,
  run: () => Promise<unknown>,
): Promise<string[][]> {
  const from = recording.executed.length
  await run()
  return recording.executed.slice(from).map(({ sql, params }) =>
    recording.client
      .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...params)
      .map((r) => r.detail),
  )
}

describe.each([
  ['without statistics', false],
  ['after ANALYZE', true],
])('sqlite read plans %s', (_title, analyze) => {
  it('taskStats, throughput, changesSince, changeCursor, list and purge read indexes, not the table', async () => {
    const recording = openRecording()
    const { storage, client } = recording
    await storage.enqueue(
      Array.from({ length: 2000 }, (_, i) => execution(i)),
      T0 - 10_000,
    )
    const { claimed } = await storage.claim({
      owner: 'w',
      now: T0,
      leaseMs: 1000,
      limit: 600,
      taskIds: ['task-0', 'task-1', 'task-2'],
    })
    await storage.settle(
      claimed
        .slice(0, 400)
        .map((r) => ({ transition: 'complete' as const, id: r.id, run: r.runs, output: '1' })),
      T0 + 10,
    )
    if (analyze) client.exec('ANALYZE')

    const [stats] = await plansOf(recording, () => storage.taskStats(T0))
    expect(stats!.join('\n')).toMatch(/SCAN executions USING COVERING INDEX executions_claim_idx/)

    const throughput = await plansOf(recording, () =>
      storage.throughput({ taskId: 'task-1', from: T0, to: T0 + 1000, bucketMs: 100 }),
    )
    const details = throughput.flat().join('\n')
    expect(details).toMatch(
      /SEARCH executions USING COVERING INDEX executions_finished_idx \(finished_at>\? AND finished_at<\?\)/,
    )
    expect(details).toMatch(
      /SEARCH executions USING COVERING INDEX executions_started_idx \(started_at>\? AND started_at<\?\)/,
    )

    // A task filter must not turn the walk of the history into a scan of the task's executions.
    const [changes] = await plansOf(recording, () =>
      storage.changesSince({ after: '100', limit: 50, taskId: 'task-1' }),
    )
    expect(changes![0]).toMatch(/^SEARCH h USING INTEGER PRIMARY KEY \(rowid>\?\)/)
    expect(changes![1]).toMatch(/^SEARCH e USING INDEX sqlite_autoindex_executions_1 \(id=\?\)/)

    const [last] = await plansOf(recording, () => storage.changeCursor())
    expect(last!.join('\n')).not.toMatch(/SCAN/)

    const [list] = await plansOf(recording, () => storage.list({ taskId: 'task-2', limit: 50 }))
    expect(list!.join('\n')).toMatch(/SEARCH executions USING INDEX executions_task_idx \(task_id=\?\)/)

    // Purge: the newest history row's tree (kept) by primary keys; each task's due roots from
    // executions_retention_idx by (task_id, finished_at). executions_finished_idx would be a
    // range on finished_at alone, walking every task's (and every child's) older rows per task.
    const purge = await plansOf(recording, () =>
      storage.purge({ now: T0 + 20, defaultRetentionMs: 5, retentionByTask: {}, limit: 50 }),
    )
    const purgeDetails = purge.flat().join('\n')
    expect(purgeDetails).toMatch(/SEARCH h USING INTEGER PRIMARY KEY \(rowid=\?\)/)
    expect(purgeDetails).toMatch(
      /SEARCH e USING INDEX executions_retention_idx \(task_id=\? AND finished_at>\? AND finished_at<\?\)/,
    )
    expect(purgeDetails).not.toMatch(/SCAN (e|executions|execution_history|h)\b(?! USING COVERING INDEX)/)
    await storage.close()
  })
})
