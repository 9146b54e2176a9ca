import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { Engine, ManualClock, type Clock, type EngineOptions, type TaskMap } from '@ratchet/core'
import { openSqliteStorage, type SqliteStorage } from '@ratchet/storage'

export const T0 = Date.UTC(2030, 0, 1)

/**
 * An engine on a real SQLite file in a fresh temp dir and a ManualClock at T0, with
 * deterministic jitter. Stopped and removed when the test finishes (kept, and its path
 * printed, when the test failed).
 */
export function openEngine(
  tasks: TaskMap,
  options: Partial<EngineOptions> & { clock?: Clock } = {},
): { engine: Engine; storage: SqliteStorage; clock: ManualClock } {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-'))
  const storage = openSqliteStorage({ filename: join(dir, 'ratchet.db') })
  const clock = new ManualClock(T0)
  const engine = new Engine({
    storage,
    tasks,
    clock,
    random: () => 0.999,
    workerId: 'worker-test',
    ...options,
  })
  onTestFinished(async ({ task: test }) => {
    const stopping = engine.stop({ drainMs: 0 })
    clock.advance(0)
    await stopping
    await storage.close()
    if (test.result?.state === 'fail') console.warn(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  })
  return { engine, storage, clock }
}
