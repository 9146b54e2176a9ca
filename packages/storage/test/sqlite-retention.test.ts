import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { newExecutionId, type NewExecution } from '@ratchet/core'
import { openSqliteStorage, type SqliteStorage } from '@ratchet/storage'

const T0 = Date.UTC(2030, 0, 1)
const DAY = 86_400_000

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

const execution = (at: number, input: string): NewExecution => ({
  id: newExecutionId(at),
  taskId: 'alpha',
  input,
  maxAttempts: 1,
  maxRecoveries: 5,
  timeoutMs: 60_000,
  backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
  priority: 0,
  idempotencyKey: null,
  runAt: at,
})

/** Enqueues, claims and completes `n` executions of ~`bytes` of input each at `at`. */
async function churn(storage: SqliteStorage, n: number, at: number, bytes = 2000): Promise<void> {
  const pad = 'x'.repeat(bytes)
  for (let done = 0; done < n; done += 100) {
    const rows = Array.from({ length: Math.min(100, n - done) }, () => execution(at, JSON.stringify({ pad })))
    await storage.enqueue(rows, at)
    const { claimed } = await storage.claim({
      owner: 'w',
      now: at,
      leaseMs: 30_000,
      limit: 100,
      taskIds: ['alpha'],
    })
    await storage.settle(
      claimed.map((r) => ({ transition: 'complete' as const, id: r.id, run: r.runs, output: '1' })),
      at,
    )
  }
}

async function purgeAll(storage: SqliteStorage, now: number): Promise<{ batches: number; maxMs: number }> {
  let batches = 0
  let maxMs = 0
  for (;;) {
    const started = performance.now()
    const outcome = await storage.purge({ now, defaultRetentionMs: DAY, retentionByTask: {}, limit: 500 })
    maxMs = Math.max(maxMs, performance.now() - started)
    batches++
    if (!outcome.more) break
  }
  while ((await storage.reclaimSpace(1000)).freePages > 0);
  return { batches, maxMs }
}

describe('SQLite retention', () => {
  it('a new database uses auto_vacuum = INCREMENTAL; an existing one is converted once at open', () => {
    const fresh = openSqliteStorage({ filename: tempFile() })
    expect(fresh.db.$client.pragma('auto_vacuum', { simple: true })).toBe(2)
    fresh.db.$client.close()

    const filename = tempFile()
    const old = new Database(filename)
    old.exec('CREATE TABLE legacy (x); INSERT INTO legacy VALUES (1)')
    expect(old.pragma('auto_vacuum', { simple: true })).toBe(0)
    old.close()
    const converted = openSqliteStorage({ filename })
    expect(converted.db.$client.pragma('auto_vacuum', { simple: true })).toBe(2)
    expect(converted.db.$client.prepare('SELECT x FROM legacy').pluck().get()).toBe(1)
    converted.db.$client.close()
  })

  it('the file stops growing under churn with purges', async () => {
    const filename = tempFile()
    const storage = openSqliteStorage({ filename })
    const sizes: number[] = []
    let maxBatchMs = 0
    for (let round = 0; round < 6; round++) {
      const at = T0 + round * 2 * DAY
      await churn(storage, 2000, at)
      const { maxMs } = await purgeAll(storage, at + DAY + 1)
      maxBatchMs = Math.max(maxBatchMs, maxMs)
      storage.db.$client.pragma('wal_checkpoint(TRUNCATE)')
      sizes.push(statSync(filename).size)
    }
    // after the first rounds, every round reuses the space the previous one freed
    expect(sizes.at(-1)!).toBeLessThanOrEqual(sizes[1]! * 1.1)
    // A batch's duration is measured by `npm run bench:retention` (docs/benchmarks.md), not
    // asserted here: on a shared machine wall time says more about the neighbours.
    expect(maxBatchMs).toBeGreaterThan(0)
    await storage.close()
  })
})
