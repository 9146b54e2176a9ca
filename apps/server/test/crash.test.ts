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
function startServer(): Promise<ChildServer> {
  return startChildServer({
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
      const history = await client.executions.history(id)
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
      () => client.executions.history(shortNapper),
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
    expect((await client.executions.history(napper)).filter((h) => h.to === 'waiting')).toHaveLength(1)
    // the in-memory sleep resumed from its record too: nothing before it ran again
    expect(await client.executions.wait(shortNapper, { timeoutMs: 15_000 })).toMatchObject({
      status: 'completed',
      output: 'rested',
    })
    expect(marksOf(shortNapper)).toEqual(['before', 'after'])
    // it died inside the sleep: its lease was recovered, not counted as a failure
    expect(await client.executions.get(shortNapper)).toMatchObject({ runs: 2, failures: 0 })
    expect((await client.executions.history(shortNapper)).map((h) => h.detail)).toContainEqual(
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
