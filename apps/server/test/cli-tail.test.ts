/**
 * `ratchet tail` as a user runs it: the real bin following a real server (a child process on
 * a fixed port, so it can be restarted under the tail), printing the changes made while it
 * runs, reconnecting across a restart, and ending on Ctrl-C (SIGINT) with exit code 0.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { freePort, killChildServers, RUN_SOURCES, startChildServer, type ChildServer } from './child-server'
import { API_KEY } from './helpers'

const ROOT = resolve(import.meta.dirname, '../../..')
const CLI = join(ROOT, 'apps/server/src/cli.ts')
const TASKS = join(import.meta.dirname, 'fixtures/cli-tasks.ts')

interface Tail {
  process: ChildProcess
  stdout(): string
  stderr(): string
  exited: Promise<number | null>
}

const tails = new Set<ChildProcess>()
let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-tail-'))
})
afterEach(async () => {
  for (const tail of tails) tail.kill('SIGKILL')
  tails.clear()
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

function startTail(args: string[], url: string): Tail {
  const child = spawn(process.execPath, [...RUN_SOURCES, CLI, 'tail', ...args], {
    cwd: ROOT,
    env: { ...process.env, RATCHET_URL: url, RATCHET_API_KEY: API_KEY, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  tails.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited }
}

async function eventually(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((done) => setTimeout(done, 50))
  }
}

function startServer(port: number): Promise<ChildServer> {
  return startChildServer({
    databaseFile: join(dir, 'ratchet.db'),
    tasksModule: TASKS,
    port,
    env: { RATCHET_API_KEYS: `cli:${API_KEY}` },
  })
}

/**
 * The change stream starts from "now" once connected: echo executions are enqueued until the
 * tail prints one of them, so what follows is surely made while it follows.
 */
async function untilFollowing(client: ReturnType<typeof createClient>, tail: Tail): Promise<void> {
  for (let i = 0; i < 100 && !tail.stdout().includes('echo'); i++) {
    await client.executions.enqueue('echo', { message: `probe ${i}` })
    await new Promise((done) => setTimeout(done, 300))
  }
  await eventually(() => tail.stdout().includes('echo'), 'the tail to print a probe')
}

describe('ratchet tail', () => {
  it('prints the changes made while it runs, filters by task, and ends on Ctrl-C with 0', async () => {
    const server = await startServer(0)
    const client = createClient({ url: server.url, apiKey: API_KEY })
    const human = startTail([], server.url)
    const machine = startTail(['--json', '--task', 'echo'], server.url)
    await untilFollowing(client, human)
    await untilFollowing(client, machine)

    const echo = (await client.executions.enqueue('echo', { message: 'followed' })).executionId
    const declined = (await client.executions.enqueue('declined', {})).executionId
    await client.executions.wait(echo)
    await client.executions.wait(declined)
    const lineOf = (id: string, change: string) =>
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  ${id}  \\S+ +${change} +run \\d+$`, 'm')
    await eventually(() => lineOf(declined, 'running → failed').test(human.stdout()), 'the failure')
    await eventually(() => machine.stdout().includes(`"executionId":"${echo}","taskId":"echo"`), 'the JSON')
    await eventually(() => lineOf(echo, 'running → completed').test(human.stdout()), 'the echo')
    expect(human.stdout()).toMatch(lineOf(echo, 'queued'))
    expect(human.stdout()).toMatch(lineOf(echo, 'queued → running'))
    expect(human.stderr()).toBe(`following changes at ${server.url} (Ctrl-C to stop)\n`)

    // --json: one object per line, only echo's, in order.
    await eventually(
      () =>
        machine
          .stdout()
          .includes(
            `"executionId":"${echo}","taskId":"echo","rootId":"${echo}","parentId":null,"from":"running","to":"completed"`,
          ),
      'echo completing in the JSON tail',
    )
    const events = machine
      .stdout()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { seq: number; executionId: string; taskId: string; to: string })
    expect(events.every((event) => event.taskId === 'echo')).toBe(true)
    expect(events.filter((event) => event.executionId === echo).map((event) => event.to)).toEqual([
      'queued',
      'running',
      'completed',
    ])
    const seqs = events.map((event) => event.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(machine.stderr()).toBe('')

    human.process.kill('SIGINT')
    machine.process.kill('SIGINT')
    expect(await human.exited).toBe(0)
    expect(await machine.exited).toBe(0)
  })

  it('says when the connection drops and goes on after the server restarts', async () => {
    const port = await freePort()
    let server = await startServer(port)
    const client = createClient({ url: server.url, apiKey: API_KEY })
    const tail = startTail([], server.url)
    await untilFollowing(client, tail)

    server.process.kill('SIGTERM')
    await server.exited
    await eventually(() => tail.stderr().includes('ratchet: lost the connection'), 'the lost connection')
    expect(tail.stderr()).toContain(
      `ratchet: lost the connection to ${server.url} (ECONNREFUSED); reconnecting until Ctrl-C\n`,
    )
    server = await startServer(port)
    const after = (await client.executions.enqueue('echo', { message: 'after the restart' })).executionId
    await eventually(
      () => new RegExp(`${after}  echo +running → completed`).test(tail.stdout()),
      'the change',
    )
    expect(tail.stderr()).toContain('reconnected\n')
    tail.process.kill('SIGINT')
    expect(await tail.exited).toBe(0)
  })

  it('fails at once on a server that is not there (3) or a wrong key (1)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const unreachable = startTail([], dead)
    expect(await unreachable.exited).toBe(3)
    expect(unreachable.stderr()).toContain(`ratchet: cannot reach the server at ${dead} (ECONNREFUSED)`)
    const server = await startServer(0)
    const wrongKey = startTail(['--api-key', 'wrong-key-0123456789'], server.url)
    expect(await wrongKey.exited).toBe(1)
    expect(wrongKey.stderr()).toContain('ratchet: UNAUTHORIZED')
  })
})
