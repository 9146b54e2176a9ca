/**
 * The `ratchet` client commands as a user runs them: the real bin in a child process (from the
 * sources; the consumer test runs the packed one) against a real server on port 0 with API
 * keys and a SQLite file. Every command in its human form and with --json (parsed), the exit
 * codes, and where the URL and key come from.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient, type Execution } from '@ratchet/client'
import { freePort } from './child-server'
import { json, ratchet, ratchetInTerminal } from './cli-run'
import { tasks } from './fixtures/cli-tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'

let server: TestServer
let env: Record<string, string>
let client: ReturnType<typeof createClient<typeof tasks>>

beforeAll(async () => {
  server = await startTestServer(tasks)
  env = { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY }
  client = createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
})
afterAll(async () => {
  await server.close()
})

// eslint-disable-next-line no-control-regex -- ANSI colour codes
const ANSI = /\x1b\[[0-9;]*m/

/** Waits until the execution reaches `status` (a wait for a signal or a wake-up). */
async function until(id: string, status: Execution['status']): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await client.executions.get(id)).status === status) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`execution ${id} never reached ${status}`)
}

describe('ratchet enqueue', () => {
  it('enqueues and prints the id; --json prints { execution, created }', async () => {
    const [human, machine] = await Promise.all([
      ratchet(['enqueue', 'echo', '{"message":"human"}'], env),
      ratchet(['enqueue', 'echo', '{"message":"machine"}', '--json'], env),
    ])
    expect(human).toMatchObject({ code: 0, stderr: '' })
    const id = /^enqueued (\S+) \(echo\): queued\n$/.exec(human.stdout)?.[1]
    expect(id, human.stdout).toBeDefined()
    expect(await client.executions.get(id!)).toMatchObject({ taskId: 'echo', input: { message: 'human' } })

    expect(machine.code).toBe(0)
    const enqueued = json<{ execution: Execution; created: boolean }>(machine)
    expect(enqueued).toMatchObject({
      created: true,
      execution: { taskId: 'echo', input: { message: 'machine' } },
    })
    expect((await client.executions.get(enqueued.execution.id)).input).toEqual({ message: 'machine' })
  })

  it('passes --idempotency-key, --delay and --priority', async () => {
    const args = [
      'enqueue',
      'echo',
      '{"message":"later"}',
      '-k',
      'cli-key-1',
      '--delay',
      '1h',
      '--priority',
      '7',
    ]
    const first = json<{ execution: Execution; created: boolean }>(await ratchet([...args, '--json'], env))
    expect(first.created).toBe(true)
    expect(first.execution).toMatchObject({ idempotencyKey: 'cli-key-1', priority: 7, status: 'queued' })
    const delayMs = Date.parse(String(first.execution.runAt)) - Date.parse(String(first.execution.createdAt))
    expect(Math.abs(delayMs - 3_600_000)).toBeLessThan(50)

    const again = await ratchet(args, env)
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(`already enqueued (idempotency key) ${first.execution.id} (echo): queued\n`)
  })

  it('--wait follows the execution to its end: exit 0 completed, exit 4 failed', async () => {
    const [done, failed, failedJson] = await Promise.all([
      ratchet(['enqueue', 'echo', '{"message":"wait"}', '--wait'], env),
      ratchet(['enqueue', 'declined', '{}', '--wait'], env),
      ratchet(['enqueue', 'declined', '{}', '--wait', '--json'], env),
    ])
    expect(done.code).toBe(0)
    expect(done.stdout).toMatch(/^id {8}\S+\ntask {6}echo\nstatus {4}completed\n/)
    expect(done.stdout).toContain('output\n  {\n    "echoed": "wait"\n  }\n')
    // Not a terminal: no spinner, nothing on stderr.
    expect(done.stderr).toBe('')

    expect(failed.code).toBe(4)
    expect(failed.stdout).toContain('status    failed')
    expect(failed.stdout).toContain('error\n  TerminalError: card declined [CARD_DECLINED]\n')
    expect(failedJson.code).toBe(4)
    expect(json<Execution>(failedJson)).toMatchObject({
      status: 'failed',
      error: { name: 'TerminalError', code: 'CARD_DECLINED' },
    })
  })

  it('--wait draws a spinner in a terminal, then the execution in colour', async () => {
    const result = await ratchetInTerminal(['enqueue', 'slow', '{"ms":150}', '--wait'], env)
    expect(result.code).toBe(0)
    const id = /\n?.*?(\S+) \(slow\) is running…/.exec(result.stdout)?.[1]
    expect(id, result.stdout).toBeDefined()
    // nanospinner's frames, then the line cleared and the cursor shown again.
    expect(result.stdout).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/)
    expect(result.stdout).toContain('\x1b[?25h')
    expect(result.stdout).toContain('\x1b[32mcompleted\x1b[39m')
    expect((await client.executions.get(id!)).status).toBe('completed')
  })

  it('bad input: a malformed JSON argument is a usage error (2), a schema error is the server’s (1)', async () => {
    const [malformed, invalid, unknown, missing] = await Promise.all([
      ratchet(['enqueue', 'echo', '{message:'], env),
      ratchet(['enqueue', 'echo', '{"message":42}'], env),
      ratchet(['enqueue', 'no-such-task', '{}'], env),
      ratchet(['enqueue', 'echo'], env),
    ])
    expect(malformed.code).toBe(2)
    expect(malformed.stderr).toContain(
      "error: command-argument value '{message:' is invalid for argument 'json'",
    )
    expect(malformed.stderr).toContain('It is not JSON')
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/^ratchet: INVALID_INPUT: .*\n {2}input\.message: .*expected string/)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('ratchet: UNKNOWN_TASK: ')
    expect(unknown.stderr).toContain('  known tasks: echo, flaky, always-fails')
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("error: missing required argument 'json'")
    const { items } = await client.executions.list({ taskId: 'no-such-task' })
    expect(items).toEqual([])
  })
})

describe('ratchet get, ls, history', () => {
  it('get shows one execution; --json prints it', async () => {
    const id = (await client.tasks.echo.enqueue({ message: 'shown' })).executionId
    await client.executions.wait(id)
    const [human, machine, missing] = await Promise.all([
      ratchet(['get', id], env),
      ratchet(['get', id, '--json'], env),
      ratchet(['get', 'no-such-id'], env),
    ])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(
      new RegExp(`^id {8}${id}\ntask {6}echo\nstatus {4}completed\nattempt {3}1 of 3`),
    )
    expect(human.stdout).toMatch(/\ncreated {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \((just now|\ds ago)\)\n/)
    expect(human.stdout).toContain('input\n  {\n    "message": "shown"\n  }\n')
    expect(human.stdout).not.toMatch(ANSI)
    expect(json<Execution>(machine)).toMatchObject({ id, status: 'completed', output: { echoed: 'shown' } })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe('ratchet: NOT_FOUND: no execution with id "no-such-id"\n  id: no-such-id\n')
  })

  it('ls prints a table, filters by status, task, parent and root, and pages with --cursor', async () => {
    const fan = await client.tasks.fan.enqueue({ size: 3 })
    await client.executions.wait(fan.executionId)
    const failed = await client.tasks.declined.enqueue({})
    await client.executions.wait(failed.executionId)

    const [table, byStatus, children, tree] = await Promise.all([
      ratchet(['ls', '--task', 'double'], env),
      ratchet(['ls', '--status', 'failed,timed_out', '--task', 'declined', '--json'], env),
      ratchet(['ls', '--parent', fan.executionId, '--json'], env),
      ratchet(['ls', '--root', fan.executionId, '--json'], env),
    ])
    expect(table.code).toBe(0)
    const lines = table.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ID +TASK +STATUS +ATTEMPT +CREATED +TOOK$/)
    expect(lines.slice(1)).toHaveLength(3)
    for (const line of lines.slice(1))
      expect(line).toMatch(/^\S+ +double +completed +1\/1 +(just now|\d+s ago) +\d+ms$/)
    // Aligned: every column starts where its header does.
    const statusColumn = lines[0]!.indexOf('STATUS')
    for (const line of lines.slice(1)) expect(line.slice(statusColumn)).toMatch(/^completed/)

    const failedPage = json<{ items: Execution[]; nextCursor: string | null }>(byStatus)
    expect(failedPage.items.map((item) => item.id)).toContain(failed.executionId)
    expect(failedPage.items.every((item) => item.status === 'failed' && item.taskId === 'declined')).toBe(
      true,
    )
    const kids = json<{ items: Execution[] }>(children).items
    expect(kids).toHaveLength(3)
    expect(kids.every((item) => item.parentId === fan.executionId)).toBe(true)
    const members = json<{ items: Execution[] }>(tree).items.map((item) => item.id)
    expect(members).toHaveLength(4)
    expect(members).toContain(fan.executionId)

    const first = await ratchet(['ls', '--task', 'double', '--limit', '2'], env)
    const cursor = /\nmore: ratchet ls --cursor (\S+)\n$/.exec(first.stdout)?.[1]
    expect(cursor, first.stdout).toBeDefined()
    const second = json<{ items: Execution[]; nextCursor: string | null }>(
      await ratchet(['ls', '--task', 'double', '--limit', '2', '--cursor', cursor!, '--json'], env),
    )
    expect(second.items).toHaveLength(1)
    expect(second.nextCursor).toBeNull()

    const [badStatus, badLimit] = await Promise.all([
      ratchet(['ls', '--status', 'done'], env),
      ratchet(['ls', '--limit', '0'], env),
    ])
    expect(badStatus.code).toBe(2)
    expect(badStatus.stderr).toContain('"done" is not a status; one of queued, running, waiting')
    expect(badLimit.code).toBe(2)
    expect(badLimit.stderr).toContain('an integer from 1 to 500, got "0"')
  })

  it('history prints the status changes in a table; --json prints { items, nextCursor }', async () => {
    const id = (await client.tasks.echo.enqueue({ message: 'history' })).executionId
    await client.executions.wait(id)
    const [human, machine] = await Promise.all([
      ratchet(['history', id], env),
      ratchet(['history', id, '--json'], env),
    ])
    expect(human.code).toBe(0)
    const lines = human.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^SEQ +AT +EVENT +NAME +STATUS +RUN$/)
    // Columns are two spaces apart at least (NAME is empty for status changes).
    expect(lines.slice(1).map((line) => line.split(/ {2,}/).slice(2))).toEqual([
      ['status', '- → queued', '0'],
      ['status', 'queued → running', '1'],
      ['status', 'running → completed', '1'],
    ])
    const page = json<{ items: { to: string }[]; nextCursor: string | null }>(machine)
    expect(page.items.map((event) => event.to)).toEqual(['queued', 'running', 'completed'])
    expect(page.nextCursor).toBeNull()

    // Pages: --limit, then the cursor the first page printed.
    const first = await ratchet(['history', id, '--limit', '2'], env)
    const cursor = new RegExp(`\nmore: ratchet history ${id} --cursor (\\S+)\n$`).exec(first.stdout)?.[1]
    expect(cursor, first.stdout).toBeDefined()
    const rest = json<{ items: { to: string }[]; nextCursor: string | null }>(
      await ratchet(['history', id, '--limit', '2', '--cursor', cursor!, '--json'], env),
    )
    expect(rest).toMatchObject({ items: [{ to: 'completed' }], nextCursor: null })
  })
})

describe('ratchet cancel, retry, signal, wakeup', () => {
  it('cancel stops a waiting execution; cancelling a completed one is a conflict (1)', async () => {
    const id = (await client.tasks.approval.enqueue({ orderId: 'c1', timeoutMs: 600_000 })).executionId
    const done = (await client.tasks.echo.enqueue({ message: 'done' })).executionId
    await Promise.all([until(id, 'waiting'), client.executions.wait(done)])
    const [cancelled, conflict] = await Promise.all([
      ratchet(['cancel', id], env),
      ratchet(['cancel', done, '--json'], env),
    ])
    expect(cancelled).toMatchObject({ code: 0, stdout: `cancelled ${id} (approval): cancelled\n` })
    expect((await client.executions.get(id)).status).toBe('cancelled')
    expect(conflict.code).toBe(1)
    expect(conflict.stdout).toBe('')
    expect(conflict.stderr).toContain(`ratchet: CONFLICT: `)
    expect(conflict.stderr).toContain(`  executionId: ${done}\n  status: completed\n`)
  })

  it('retry runs a failed execution again; --json prints it', async () => {
    const id = (await client.tasks.declined.enqueue({})).executionId
    await client.executions.wait(id)
    const retried = await ratchet(['retry', id, '--json'], env)
    expect(retried.code).toBe(0)
    expect(json<Execution>(retried)).toMatchObject({ id, status: 'queued' })
    const done = await client.executions.wait(id)
    expect(done).toMatchObject({ status: 'failed', runs: 2 })
    const human = await ratchet(['retry', id], env)
    expect(human.stdout).toBe(`retrying ${id} (declined): queued\n`)
  })

  it('signal delivers a JSON payload to ctx.waitForSignal', async () => {
    const [a, b] = await Promise.all([
      client.tasks.approval.enqueue({ orderId: 's1', timeoutMs: 600_000 }),
      client.tasks.approval.enqueue({ orderId: 's2', timeoutMs: 600_000 }),
    ])
    await Promise.all([until(a.executionId, 'waiting'), until(b.executionId, 'waiting')])
    const [human, machine, bad] = await Promise.all([
      ratchet(['signal', a.executionId, 'approval', '{"orderId":"s1","approved":true}'], env),
      ratchet(['signal', b.executionId, 'approval', '{"orderId":"s2","approved":false}', '--json'], env),
      ratchet(['signal', b.executionId, 'approval', 'yes'], env),
    ])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(
      new RegExp(`^signal "approval" sent to ${a.executionId} \\(approval\\): \\w+\n$`),
    )
    expect(json<Execution>(machine).id).toBe(b.executionId)
    expect(bad.code).toBe(2)
    expect((await client.executions.wait(a.executionId)).output).toBe('approved')
    expect((await client.executions.wait(b.executionId)).output).toBe('rejected')
  })

  it('wakeup completes a wait by key with an output or --error; an unknown key is NOT_FOUND', async () => {
    const [a, b] = await Promise.all([
      client.tasks.sleeper.enqueue({ key: 'cli-wake-a' }),
      client.tasks.sleeper.enqueue({ key: 'cli-wake-b' }),
    ])
    await Promise.all([until(a.executionId, 'waiting'), until(b.executionId, 'waiting')])
    const [human, machine, unknown, both, neither] = await Promise.all([
      ratchet(['wakeup', 'cli-wake-a', '{"paid":true}'], env),
      ratchet(['wakeup', 'cli-wake-b', '--error', 'card declined', '--code', 'DECLINED', '--json'], env),
      ratchet(['wakeup', 'cli-wake-none', '1'], env),
      ratchet(['wakeup', 'cli-wake-none', '1', '--error', 'x'], env),
      ratchet(['wakeup', 'cli-wake-none'], env),
    ])
    expect(human).toMatchObject({ code: 0, stdout: `woke cli-wake-a: execution ${a.executionId} goes on\n` })
    expect(json(machine)).toEqual({ executionId: b.executionId })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('ratchet: NOT_FOUND: ')
    expect(unknown.stderr).toContain('  key: cli-wake-none\n')
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('give the output (JSON) or --error <message>, not both')
    expect(neither.code).toBe(2)
    expect((await client.executions.wait(a.executionId)).output).toEqual({ woke: { paid: true } })
    const failed = await client.executions.wait(b.executionId)
    expect(failed).toMatchObject({ status: 'failed', error: { message: 'card declined', code: 'DECLINED' } })
  })
})

describe('connection, exit codes and output', () => {
  it('a flag wins over its variable; the variable over the default', async () => {
    await client.tasks.echo.enqueue({ message: 'listed' })
    const dead = `http://127.0.0.1:${await freePort()}`
    const [flagUrl, flagKey, envOnly, defaultUrl] = await Promise.all([
      ratchet(['ls', '--json', '--url', server.url], { ...env, RATCHET_URL: dead }),
      ratchet(['ls', '--json', '--api-key', API_KEY], { ...env, RATCHET_API_KEY: 'wrong-key-0123456789' }),
      ratchet(['ls', '--json'], env),
      ratchet(['ls', '--json'], { RATCHET_API_KEY: API_KEY }),
    ])
    expect(flagUrl.code).toBe(0)
    expect(flagKey.code).toBe(0)
    expect(envOnly.code).toBe(0)
    expect(json<{ items: unknown[] }>(envOnly).items.length).toBeGreaterThan(0)
    // The default URL: in tests nothing should listen there; if something does, it answered.
    if (defaultUrl.code === 3)
      expect(defaultUrl.stderr).toMatch(/^ratchet: cannot reach the server at http:\/\/127\.0\.0\.1:8787 /)
    else expect([0, 1]).toContain(defaultUrl.code)
  })

  it('exit codes: wrong or missing key 1, unreachable 3, bad --url or unknown option 2', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const [wrongKey, noKey, unreachable, badUrl, unknownOption, unknownCommand] = await Promise.all([
      ratchet(['ls', '--api-key', 'wrong-key-0123456789'], { RATCHET_URL: server.url }),
      ratchet(['get', 'x'], { RATCHET_URL: server.url }),
      ratchet(['ls', '--url', dead], env),
      ratchet(['ls', '--url', 'localhost:8787'], env),
      ratchet(['ls', '--colour'], env),
      ratchet(['list'], env),
    ])
    expect(wrongKey.code).toBe(1)
    expect(wrongKey.stderr).toMatch(
      /^ratchet: UNAUTHORIZED: .*\n {2}give a key of the server with --api-key or RATCHET_API_KEY\n$/,
    )
    expect(noKey.code).toBe(1)
    expect(noKey.stderr).toContain('ratchet: UNAUTHORIZED')
    expect(unreachable.code).toBe(3)
    expect(unreachable.stderr).toBe(
      `ratchet: cannot reach the server at ${dead} (ECONNREFUSED); is it running? (--url or RATCHET_URL)\n`,
    )
    expect(badUrl.code).toBe(2)
    expect(badUrl.stderr).toBe('ratchet: --url (RATCHET_URL) must be an http(s) URL, got "localhost:8787"\n')
    expect(unknownOption.code).toBe(2)
    expect(unknownOption.stderr).toContain("error: unknown option '--colour'")
    expect(unknownCommand.code).toBe(2)
    expect(unknownCommand.stderr).toContain("error: unknown command 'list'")
  })

  it('colours only on a terminal or with FORCE_COLOR, never with NO_COLOR', async () => {
    const id = (await client.tasks.echo.enqueue({ message: 'colour' })).executionId
    await client.executions.wait(id)
    const [piped, forced, noColor] = await Promise.all([
      ratchet(['get', id], env),
      ratchet(['get', id], { ...env, FORCE_COLOR: '1' }),
      ratchet(['get', id], { ...env, FORCE_COLOR: '1', NO_COLOR: '1' }),
    ])
    expect(piped.stdout).not.toMatch(ANSI)
    expect(forced.stdout).toContain('\x1b[32mcompleted\x1b[39m')
    expect(noColor.stdout).not.toMatch(ANSI)
    const timeless = (text: string) => text.replace(/\((just now|\d+s ago)\)/g, '')
    expect(timeless(noColor.stdout)).toBe(timeless(piped.stdout))
  })

  it('--help describes every command, the environment and the exit codes', async () => {
    const [main, enqueue] = await Promise.all([ratchet(['--help']), ratchet(['enqueue', '--help'])])
    expect(main.code).toBe(0)
    for (const command of [
      'start',
      'migrate',
      'enqueue',
      'get',
      'ls',
      'history',
      'cancel',
      'retry',
      'signal',
      'wakeup',
      'tail',
    ])
      expect(main.stdout).toMatch(new RegExp(`\n  ${command} `))
    expect(main.stdout).toContain('RATCHET_URL and RATCHET_API_KEY')
    expect(main.stdout).toContain('4  enqueue --wait: the execution failed, timed out or was cancelled')
    expect(enqueue.code).toBe(0)
    expect(enqueue.stdout).toContain('--idempotency-key <key>')
    expect(enqueue.stdout).toContain('--url <url>')
    expect(enqueue.stdout).toContain('[env: RATCHET_API_KEY]')
  })
})
