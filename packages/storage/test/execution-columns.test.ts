import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, expect, it } from 'vitest'
import { newExecutionId } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'
import { executionColumns, executionRowOf } from '../src/execution-columns'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

it('executionRowOf maps a raw row of executionColumns to the same object the aliases give', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-columns-'))
  dirs.push(dir)
  const filename = join(dir, 'x.db')
  const storage = openSqliteStorage({ filename })
  const parentId = newExecutionId(1)
  const common = { input: '{"a":1}', maxAttempts: 3, maxRecoveries: 4, timeoutMs: 5000 }
  const backoff = { initialMs: 10, maxMs: 20, factor: 2 }
  await storage.enqueue(
    [
      { id: parentId, taskId: 'p', ...common, backoff, priority: 0, idempotencyKey: null, runAt: 1 },
      {
        id: newExecutionId(1),
        taskId: 'c',
        ...common,
        backoff,
        priority: 7,
        idempotencyKey: 'k',
        runAt: 2,
        parentId,
        rootId: parentId,
        wakesParent: true,
        deadlineAt: 99,
      },
    ],
    1,
  )
  await storage.claim({ owner: 'w', now: 3, leaseMs: 1000, limit: 1, taskIds: ['c'] })
  await storage.close()
  const db = new Database(filename, { readonly: true })
  const sql = `SELECT ${executionColumns()} FROM executions ORDER BY task_id`
  const objects = db.prepare(sql).all() as Record<string, unknown>[]
  const raw = db.prepare(sql).raw(true).all() as unknown[][]
  db.close()
  expect(objects).toHaveLength(2)
  expect(raw.map(executionRowOf)).toEqual(objects)
  for (const row of raw.map(executionRowOf))
    expect(Object.keys(row).sort()).toEqual(Object.keys(objects[0]!).sort())
})
