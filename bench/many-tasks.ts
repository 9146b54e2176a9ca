/**
 * `npx tsx --conditions=@ratchet/source bench/many-tasks.ts [registered=200]`: no-op throughput when the server registers
 * many tasks and only one has work, the case fair claiming must not make slow (claims read
 * only tasks with queued work). Prints executions/s for 20,000 executions, twice.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { Engine, task, type AnyTask } from '@ratchet/core'
import { openSqliteStorage } from '@ratchet/storage'

const registered = Number(process.argv[2] ?? 200)
const N = 20_000
const tasks: Record<string, AnyTask> = {}
for (let i = 0; i < registered; i++)
  tasks[`t${i}`] = task({ id: `t${i}`, input: z.object({}), run: () => null })

for (let rep = 0; rep < 2; rep++) {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-bench-many-'))
  const storage = openSqliteStorage({ filename: join(dir, 'bench.db') })
  const engine = new Engine({ storage, tasks, concurrency: 100, claimBatchSize: 100 })
  for (let i = 0; i < N; i += 1000)
    await engine.enqueueMany(Array.from({ length: 1000 }, () => ({ task: 't0', input: {} })))
  let done = 0
  const all = new Promise<void>((resolve) =>
    engine.changes.subscribeAll((c) => {
      if (c.status === 'completed' && ++done === N) resolve()
    }),
  )
  const t0 = performance.now()
  engine.start()
  await all
  console.log(
    `${registered} registered tasks, one busy: ${Math.round(N / ((performance.now() - t0) / 1000))} executions/s`,
  )
  await engine.stop()
  await storage.close()
  rmSync(dir, { recursive: true, force: true })
}
