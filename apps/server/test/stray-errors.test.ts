/**
 * Errors that escape task code (a throw in a timer it set, a rejected promise nobody handles)
 * do not take the server down with every attempt in flight: a real server in a child process
 * logs each one with the execution it came from and keeps serving.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { killChildServers, startChildServer, type ChildServer } from './child-server'
import { tasks as strayTasks } from './fixtures/stray-error-tasks'
import { API_KEY, startTestServer, until } from './helpers'

const TASKS = join(import.meta.dirname, 'fixtures/stray-error-tasks.ts')
const ERROR = 50

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-stray-'))
})
afterEach(async () => {
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

/** A server that traces stray errors to their execution from the start (see the last test for the default). */
function startServer(env: Record<string, string> = {}): Promise<ChildServer> {
  return startChildServer({
    databaseFile: join(dir, 'ratchet.db'),
    tasksModule: TASKS,
    env: { RATCHET_API_KEYS: `stray:${API_KEY}`, RATCHET_ATTRIBUTE_STRAY_ERRORS: 'always', ...env },
  })
}

const stillRunning = (server: ChildServer) =>
  server.process.exitCode === null && server.process.signalCode === null

describe('stray errors in task code', () => {
  it('are logged with their execution, fail that attempt (a throw) and leave the server and the other executions running', async () => {
    const server = await startServer()
    const client = createClient<typeof strayTasks>({ url: server.url, apiKey: API_KEY })
    const steady = await Promise.all(
      Array.from({ length: 5 }, async (_, n) => (await client.tasks.steady.enqueue({ n })).executionId),
    )
    const thrower = (await client.tasks.strayThrow.enqueue({})).executionId
    const rejecter = (await client.tasks.strayReject.enqueue({})).executionId
    const more = (await client.tasks.steady.enqueue({ n: 10 })).executionId

    // The run that threw from its timer never settled itself: the uncaught exception failed its
    // attempt (retried once, then failed with it), rather than leaving it to its 60 s timeout.
    expect(await client.executions.wait(thrower, { timeoutMs: 20_000 })).toMatchObject({
      status: 'failed',
      failures: 2,
      error: { message: 'boom' },
    })
    expect(await client.executions.wait(rejecter, { timeoutMs: 20_000 })).toMatchObject({
      status: 'completed',
      output: 'done anyway',
    })
    for (const id of [...steady, more])
      expect(await client.executions.wait(id, { timeoutMs: 20_000 })).toMatchObject({ status: 'completed' })
    expect(stillRunning(server)).toBe(true)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

    // The log lines come through the child's stdout, which may lag behind the HTTP answers.
    const uncaught = await until(
      () => server.logs.filter((l) => l.msg === 'uncaught exception in task code'),
      (lines) => lines.length >= 2,
    )
    expect(uncaught.map((l) => [l.level, l.executionId, l.taskId, l.attempt])).toEqual([
      [ERROR, thrower, 'stray-throw', 1],
      [ERROR, thrower, 'stray-throw', 2],
    ])
    expect(uncaught[0]).toMatchObject({ err: { message: 'boom' }, attemptFailed: true })
    await until(
      () => server.logs.filter((l) => l.msg === 'unhandled promise rejection in task code'),
      (lines) => lines.length === 1,
    )
    expect(server.logs.find((l) => l.msg === 'unhandled promise rejection in task code')).toMatchObject({
      level: ERROR,
      executionId: rejecter,
      taskId: 'stray-reject',
      attempt: 1,
      err: { message: 'nobody handles this' },
    })
  })

  it("an error raised by an attempt's abort (a throwing clean-up at its timeout) is its own, never the attempt whose work happened to arm the timer", async () => {
    const server = await startServer()
    const client = createClient<typeof strayTasks>({ url: server.url, apiKey: API_KEY })
    const bystanderId = (await client.tasks.bystander.enqueue({})).executionId
    // The bystander is not failed by another execution's error: it completes.
    const done = await client.executions.wait(bystanderId, { timeoutMs: 20_000 })
    expect(done).toMatchObject({ status: 'completed', failures: 0 })
    const noisyId = done.output as string
    expect(await client.executions.wait(noisyId, { timeoutMs: 20_000 })).toMatchObject({
      status: 'timed_out',
      error: { name: 'TimeoutError' },
    })
    const line = await until(
      () => server.logs.find((l) => l.msg === 'uncaught exception in task code'),
      (found) => found !== undefined,
    )
    expect(line).toMatchObject({
      level: ERROR,
      executionId: noisyId,
      taskId: 'noisy-timeout',
      err: { message: 'clean-up after the timeout failed' },
      // its attempt had already ended (timed out): the error changes nothing
      attemptFailed: false,
    })
    expect(stillRunning(server)).toBe(true)
  })

  it('a promise an earlier run left behind, rejected during a later run of the same execution, is the earlier run’s', async () => {
    const server = await startServer()
    const client = createClient<typeof strayTasks>({ url: server.url, apiKey: API_KEY })
    const id = (await client.tasks.leavesPromise.enqueue({})).executionId
    await until(
      () => client.executions.get(id),
      (e) => e.status === 'waiting',
    )
    await client.executions.signal(id, 'go', null) // run 2 rejects run 1's promise, then completes
    expect(await client.executions.wait(id, { timeoutMs: 20_000 })).toMatchObject({
      status: 'completed',
      output: 'completed anyway',
      runs: 2,
      failures: 0,
    })
    const line = await until(
      () => server.logs.find((l) => l.msg === 'unhandled promise rejection in task code'),
      (found) => found !== undefined,
    )
    expect(line).toMatchObject({ executionId: id, run: 1, attemptFailed: false })
  })

  it('an error no execution caused is logged at error level, and the server keeps serving', async () => {
    const server = await startServer({ RATCHET_TEST_MODULE_TIMER_MS: '300' })
    await until(
      () => server.logs.find((l) => l.msg === 'uncaught exception outside any execution'),
      (line) => line !== undefined,
    )
    expect(server.logs.find((l) => l.msg === 'uncaught exception outside any execution')).toMatchObject({
      level: ERROR,
      err: { message: 'a timer of the tasks module itself' },
    })
    expect(stillRunning(server)).toBe(true)
    const client = createClient<typeof strayTasks>({ url: server.url, apiKey: API_KEY })
    const { executionId } = await client.tasks.steady.enqueue({ n: 1 })
    expect(await client.executions.wait(executionId, { timeoutMs: 20_000 })).toMatchObject({
      status: 'completed',
      output: 2,
    })
  })

  it('by default, the first stray error is logged with the executions then running as suspects, and turns attribution on for the next ones', async () => {
    const server = await startServer({ RATCHET_ATTRIBUTE_STRAY_ERRORS: '' })
    const client = createClient<typeof strayTasks>({ url: server.url, apiKey: API_KEY })
    // Its run never settles (a timer of it throws), so it is running when the error comes.
    const thrower = (await client.tasks.strayThrow.enqueue({})).executionId
    const unknown = await until(
      () =>
        server.logs.find(
          (l) =>
            l.msg ===
            'uncaught exception, execution unknown: stray errors are traced to their execution from now on',
        ),
      (found) => found !== undefined,
    )
    expect(unknown).toMatchObject({
      level: ERROR,
      err: { message: 'boom' },
      runningExecutions: [{ executionId: thrower, taskId: 'stray-throw' }],
    })
    expect(unknown).not.toHaveProperty('executionId')

    const second = (await client.tasks.strayReject.enqueue({})).executionId
    expect(await client.executions.wait(second, { timeoutMs: 20_000 })).toMatchObject({ status: 'completed' })
    const traced = await until(
      () => server.logs.find((l) => l.msg === 'unhandled promise rejection in task code'),
      (found) => found !== undefined,
    )
    expect(traced).toMatchObject({ level: ERROR, executionId: second, taskId: 'stray-reject' })
    expect(stillRunning(server)).toBe(true)
  })

  it('the process handlers exist while a server runs, one pair for several servers, and go with the last stop', async () => {
    const count = () => [
      process.listenerCount('uncaughtException'),
      process.listenerCount('unhandledRejection'),
    ]
    const before = count()
    const a = await startTestServer(strayTasks)
    const b = await startTestServer(strayTasks)
    expect(count()).toEqual(before.map((n) => n + 1))
    await a.close()
    expect(count()).toEqual(before.map((n) => n + 1))
    await b.close()
    expect(count()).toEqual(before)
    const off = await startTestServer(strayTasks, { handleStrayErrors: false })
    expect(count()).toEqual(before)
    await off.close()
  })
})
