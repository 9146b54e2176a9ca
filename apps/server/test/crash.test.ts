import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, type RatchetClient } from '@ratchet/client'
import { killChildServers, startChildServer, type ChildServer } from './child-server'
import type { tasks } from './fixtures/crash-tasks'
import { API_KEY, until } from './helpers'

const TASKS = join(import.meta.dirname, 'fixtures/crash-tasks.ts')

let dir: string
let markers: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-crash-'))
  markers = join(dir, 'markers')
  mkdirSync(markers)
})

afterEach(async () => {
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

/** Starts `npm start`'s entry point as a real child process on the temp database. */
function startServer(options: { mayExitBeforeListening?: boolean } = {}): Promise<ChildServer> {
  return startChildServer({
    ...options,
    databaseFile: join(dir, 'ratchet.db'),
    tasksModule: TASKS,
    env: {
      RATCHET_API_KEYS: `crash:${API_KEY}`,
      RATCHET_TEST_MARKERS: markers,
      RATCHET_DRAIN_MS: '5000',
      // Sleeps up to 4 s pass in memory: wide enough to kill the process inside one.
      RATCHET_SHORT_SLEEP_MS: '4000',
    },
  })
}

const marksOf = (executionId: string) => {
  const file = join(markers, executionId)
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []
}

describe('crash and restart on the same SQLite file', () => {
  it('SIGKILL mid-run: every execution completes, the lost run is recovered without counting a failure, nothing is lost', async () => {
    const first = await startServer()
    let client: RatchetClient<typeof tasks> = createClient<typeof tasks>({ url: first.url, apiKey: API_KEY })
    const midRun: string[] = []
    for (let i = 0; i < 5; i++)
      midRun.push((await client.tasks.sideEffect.enqueue({ firstRunMs: 60_000 })).executionId)
    const queued: string[] = []
    for (let i = 0; i < 5; i++) {
      queued.push((await client.tasks.sideEffect.enqueue({ firstRunMs: 0 }, { delayMs: 1_500 })).executionId)
    }
    await until(
      () => midRun.map(marksOf),
      (all) => all.every((lines) => lines.includes('start 1')),
    )

    first.process.kill('SIGKILL')
    await first.exited

    const second = await startServer()
    client = createClient<typeof tasks>({ url: second.url, apiKey: API_KEY })
    for (const id of [...midRun, ...queued]) {
      expect((await client.executions.wait(id, { timeoutMs: 15_000 })).status).toBe('completed')
    }
    for (const id of midRun) {
      const execution = await client.executions.get(id)
      // two runs of attempt 1: the first was lost to the crash, which is not a failure
      expect(execution).toMatchObject({ runs: 2, attempt: 1, failures: 0, output: { attempt: 1 } })
      expect(marksOf(id)).toEqual(['start 1', 'start 1', 'done 1'])
      const history = (await client.executions.history(id)).items
      expect(history.map((h) => `${h.from ?? '-'}>${h.to}#${h.run}`)).toEqual([
        '->queued#0',
        'queued>running#1',
        'running>queued#1',
        'queued>running#2',
        'running>completed#2',
      ])
      expect(history[2]?.detail).toMatchObject({
        transition: 'recover',
        error: { code: 'LEASE_EXPIRED' },
        recoveries: 1,
      })
    }
    for (const id of queued) {
      expect(await client.executions.get(id)).toMatchObject({ runs: 1, attempt: 1 })
      expect(marksOf(id)).toEqual(['start 1', 'done 1'])
    }
    const { items } = await client.executions.list({ limit: 100 })
    expect(items).toHaveLength(10)
    expect(
      second.logs.filter((l) => l.msg === 'recovered a run lost to a crash (lease expired)'),
    ).toHaveLength(5)

    second.process.kill('SIGTERM')
    expect(await second.exited).toBe(0)
  })

  it('SIGKILL during a step, a sleep and a child: finished steps never run again and every workflow completes', async () => {
    const first = await startServer()
    let client: RatchetClient<typeof tasks> = createClient<typeof tasks>({ url: first.url, apiKey: API_KEY })
    const stepper = (await client.tasks.stepper.enqueue({})).executionId
    const napper = (await client.tasks.napper.enqueue({ napMs: 4_500 })).executionId
    const parent = (await client.tasks.parent.enqueue({})).executionId
    await until(
      () => marksOf(stepper),
      (lines) => lines.includes('two-start'),
    )
    await until(
      () => client.executions.get(napper),
      (e) => e.status === 'waiting',
    )
    const [child] = (
      await until(
        () => client.executions.list({ parentId: parent }),
        (page) => page.items.length === 1,
      )
    ).items
    await until(
      () => marksOf(child!.id),
      (lines) => lines.includes('child-start'),
    )
    expect(await client.executions.get(parent)).toMatchObject({ status: 'waiting' })
    // A sleep short enough to pass in memory (shortSleepMs): the process dies inside it.
    const shortNapper = (await client.tasks.napper.enqueue({ napMs: 3_000 })).executionId
    await until(
      async () => (await client.executions.history(shortNapper)).items,
      (history) => history.some((h) => h.event === 'wait' && h.name === 'nap'),
    )
    expect(await client.executions.get(shortNapper)).toMatchObject({ status: 'running' })

    first.process.kill('SIGKILL')
    await first.exited

    const second = await startServer()
    client = createClient<typeof tasks>({ url: second.url, apiKey: API_KEY })
    expect(await client.executions.wait(stepper, { timeoutMs: 15_000 })).toMatchObject({
      status: 'completed',
      output: 6,
    })
    expect(await client.executions.wait(napper, { timeoutMs: 15_000 })).toMatchObject({
      status: 'completed',
      output: 'rested',
    })
    expect(await client.executions.wait(parent, { timeoutMs: 15_000 })).toMatchObject({
      status: 'completed',
      output: 42,
    })

    // the step in flight ran again; the finished one before it did not
    expect(marksOf(stepper)).toEqual(['one', 'two-start', 'two-start', 'two-done', 'three'])
    // the sleep survived the crash as a record, not as a timer in the dead process
    expect(marksOf(napper)).toEqual(['before', 'after'])
    expect((await client.executions.history(napper)).items.filter((h) => h.to === 'waiting')).toHaveLength(1)
    // the in-memory sleep resumed from its record too: nothing before it ran again
    expect(await client.executions.wait(shortNapper, { timeoutMs: 15_000 })).toMatchObject({
      status: 'completed',
      output: 'rested',
    })
    expect(marksOf(shortNapper)).toEqual(['before', 'after'])
    // it died inside the sleep: its lease was recovered, not counted as a failure
    expect(await client.executions.get(shortNapper)).toMatchObject({ runs: 2, failures: 0 })
    expect((await client.executions.history(shortNapper)).items.map((h) => h.detail)).toContainEqual(
      expect.objectContaining({ transition: 'recover', recoveries: 1, progressed: true }),
    )
    // the child's lost run is recovered and runs again; the parent's first step ran once
    expect(marksOf(child!.id)).toEqual(['child-start', 'child-start', 'child-done'])
    expect(await client.executions.get(child!.id)).toMatchObject({
      status: 'completed',
      runs: 2,
      failures: 0,
      parentId: parent,
    })
    expect(marksOf(parent)).toEqual(['before', 'after'])
    expect((await client.executions.list({ rootId: parent })).items.map((e) => e.id).sort()).toEqual(
      [parent, child!.id].sort(),
    )

    second.process.kill('SIGTERM')
    expect(await second.exited).toBe(0)
  })

  it('a task that kills its server on every run fails with RECOVERIES_EXHAUSTED after maxRecoveries + 1 runs; healthy work beside it completes', async () => {
    let server = await startServer()
    let client: RatchetClient<typeof tasks> = createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
    // Due together, so each server claims both in one batch and dies before the healthy one
    // records anything: the healthy execution loses three runs too.
    const runAt = new Date(Date.now() + 1_000)
    const healthyId = (await client.tasks.healthy.enqueue({}, { runAt })).executionId
    const crasherId = (await client.tasks.crasher.enqueue({}, { runAt })).executionId
    // maxRecoveries is 2: the crasher's first three runs each take the server down ...
    for (let run = 1; run <= 3; run++) {
      expect(await server.exited).toBeNull() // killed by a signal
      expect(marksOf(crasherId)).toHaveLength(run)
      // The next two die as soon as they claim it, maybe before their listening line is out
      // (pino writes it asynchronously; a SIGKILL does not wait).
      server = await startServer({ mayExitBeforeListening: run < 3 })
    }
    // ... and the fourth server ends it at start-up instead of running it again.
    client = createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
    const failed = await client.executions.wait(crasherId, { timeoutMs: 15_000 })
    expect(failed).toMatchObject({
      status: 'failed',
      runs: 3,
      attempt: 1,
      failures: 1,
      recoveries: 2,
      maxRecoveries: 2,
      error: { name: 'RecoveriesExhaustedError', code: 'RECOVERIES_EXHAUSTED', data: { maxRecoveries: 2 } },
    })
    expect(failed.error?.message).toContain('raise maxRecoveries')
    expect(marksOf(crasherId)).toEqual(['run 1', 'run 1', 'run 1'])
    expect(server.logs).toContainEqual(
      expect.objectContaining({ level: 50, executionId: crasherId, code: 'RECOVERIES_EXHAUSTED' }),
    )

    // The healthy workflow lost the same three runs (more than the default maxAttempts, 3)
    // without a failure, and then ran each step once.
    expect(await client.executions.wait(healthyId, { timeoutMs: 15_000 })).toMatchObject({
      status: 'completed',
      output: 'healthy',
      runs: 4,
      attempt: 1,
      failures: 0,
      recoveries: 0,
    })
    expect(marksOf(healthyId)).toEqual(['step-0', 'step-1', 'step-2'])
    const recoveries = (await client.executions.history(healthyId)).items
      .map((h) => h.detail as { transition?: string; recoveries?: number } | null)
      .filter((d) => d?.transition === 'recover')
      .map((d) => d!.recoveries)
    expect(recoveries).toEqual([1, 2, 3])

    server.process.kill('SIGTERM')
    expect(await server.exited).toBe(0)
  })

  it('SIGTERM drains a running attempt, and queued executions survive a clean restart', async () => {
    const first = await startServer()
    let client: RatchetClient<typeof tasks> = createClient<typeof tasks>({ url: first.url, apiKey: API_KEY })
    const running = (await client.tasks.sideEffect.enqueue({ firstRunMs: 800 })).executionId
    const delayed: string[] = []
    for (let i = 0; i < 3; i++)
      delayed.push((await client.tasks.sideEffect.enqueue({ firstRunMs: 0 }, { delayMs: 2_000 })).executionId)
    await until(
      () => marksOf(running),
      (lines) => lines.includes('start 1'),
    )

    first.process.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    // the drain let the running attempt finish before the process exited
    expect(marksOf(running)).toEqual(['start 1', 'done 1'])
    for (const id of delayed) expect(marksOf(id)).toEqual([])

    const second = await startServer()
    client = createClient<typeof tasks>({ url: second.url, apiKey: API_KEY })
    expect(await client.executions.get(running)).toMatchObject({ status: 'completed', runs: 1, attempt: 1 })
    for (const id of delayed) {
      expect(await client.executions.wait(id, { timeoutMs: 15_000 })).toMatchObject({
        status: 'completed',
        runs: 1,
        attempt: 1,
      })
    }
    second.process.kill('SIGTERM')
    expect(await second.exited).toBe(0)
  })
})
