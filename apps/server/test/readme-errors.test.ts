/**
 * The README's error table is what the server really returns: a real server is made to return
 * every row (over the typed client, raw RPC and REST), each with the row's HTTP status, and
 * every code it returned — and every code of the contract — has a row.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient, ORPCError } from '@ratchet/client'
import { errorMap } from '@ratchet/contract'
import { StorageUnavailableError } from '@ratchet/core'
import { tasks as handleTasks } from './fixtures/handle-tasks'
import { echo } from './fixtures/tasks'
import { API_KEY, startTestServer, type TestServer } from './helpers'

const tasks = { ...handleTasks, echo }

const README = readFileSync(join(resolve(import.meta.dirname, '../../..'), 'README.md'), 'utf8')

/** code → HTTP status, from the table marked `readme-test: error-table`. */
function errorTable(): Map<string, number> {
  const start = README.indexOf('<!-- readme-test: error-table')
  expect(start, 'README.md has a table marked readme-test: error-table').toBeGreaterThan(0)
  const rows = new Map<string, number>()
  const lines = README.slice(start).split('\n').slice(1)
  for (const line of lines.slice(lines.findIndex((l) => l.startsWith('|')))) {
    if (!line.startsWith('|')) break
    const match = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line)
    if (match) rows.set(match[1]!, Number(match[2]))
  }
  return rows
}

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

interface Observed {
  code: string
  status: number
}

describe('README error table', () => {
  it('every row is returned by a real server with its status, and every code returned has a row', async () => {
    const PAYLOAD_LIMIT = 1024
    t = await startTestServer(tasks, { maxPayloadBytes: PAYLOAD_LIMIT })
    const server = t
    const client = createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
    const anonymous = createClient<typeof tasks>({ url: server.url })

    const fromClient = (call: () => Promise<unknown>) => async (): Promise<Observed> => {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      )
      if (!(error instanceof ORPCError)) throw new Error(`expected an ORPCError, got ${String(error)}`)
      const { code, status } = error as ORPCError<string, unknown>
      return { code, status }
    }
    const http =
      (path: string, init: { method?: string; body?: string; key?: string | null } = {}) =>
      async (): Promise<Observed> => {
        const response = await fetch(`${server.url}${path}`, {
          method: init.method ?? 'POST',
          headers: {
            'content-type': 'application/json',
            ...(init.key === null ? {} : { authorization: `Bearer ${init.key ?? API_KEY}` }),
          },
          ...(init.body !== undefined ? { body: init.body } : {}),
        })
        const body = (await response.json()) as { code?: string; json?: { code: string } }
        return { code: (body.json?.code ?? body.code)!, status: response.status }
      }

    const { executionId: done } = await client.tasks.double.enqueue({ n: 1 })
    await client.executions.wait(done, { timeoutMs: 10_000 })
    const unknownId = '0198f0c4-8d2b-7000-8000-000000000000'
    const big = 'x'.repeat(PAYLOAD_LIMIT + 1)

    const producers: [string, string, () => Promise<Observed>][] = [
      [
        'input failing the schema (REST)',
        'INVALID_INPUT',
        http('/api/executions', { body: '{"taskId":"double","input":{}}' }),
      ],
      ['malformed JSON (REST)', 'INVALID_INPUT', http('/api/executions', { body: '{"taskId": ' })],
      ['malformed JSON (RPC)', 'INVALID_INPUT', http('/rpc/executions/enqueue', { body: '{"json": {' })],
      [
        'an invalid option (client)',
        'INVALID_INPUT',
        fromClient(() => client.tasks.double.enqueue({ n: 1 }, { delayMs: -1 })),
      ],
      ['no key (REST)', 'UNAUTHORIZED', http('/api/executions', { method: 'GET', key: null })],
      ['no key (client)', 'UNAUTHORIZED', fromClient(() => anonymous.executions.list())],
      ['an unknown execution (client)', 'NOT_FOUND', fromClient(() => client.executions.get(unknownId))],
      ['an unknown execution (REST)', 'NOT_FOUND', http(`/api/executions/${unknownId}`, { method: 'GET' })],
      [
        'an unknown wake-up key',
        'NOT_FOUND',
        fromClient(() => client.executions.wakeup('nope', { output: 1 })),
      ],
      ['an unknown route', 'NOT_FOUND', http('/api/nope', { method: 'GET' })],
      ['an unknown task', 'UNKNOWN_TASK', fromClient(() => client.executions.enqueue('nope', {}))],
      ['cancelling a completed execution', 'CONFLICT', fromClient(() => client.executions.cancel(done))],
      [
        'an idempotency key reused',
        'CONFLICT',
        fromClient(() => client.tasks.double.enqueue({ n: 2 }, { idempotencyKey: 'k' })),
      ],
      [
        'an input above the payload limit',
        'PAYLOAD_TOO_LARGE',
        fromClient(() => client.tasks.echo.enqueue({ message: big })),
      ],
      [
        'a signal payload above it',
        'PAYLOAD_TOO_LARGE',
        fromClient(() => client.executions.signal(done, 'go', big)),
      ],
      [
        'a body above the body limit',
        'PAYLOAD_TOO_LARGE',
        http('/api/executions', { body: JSON.stringify({ taskId: 'double', input: 'x'.repeat(70_000) }) }),
      ],
      [
        'a GET to a procedure that changes state',
        'METHOD_NOT_SUPPORTED',
        http('/rpc/executions/enqueue?data=%7B%7D', { method: 'GET' }),
      ],
      [
        'the database unreachable (PostgreSQL down or restarting)',
        'STORAGE_UNAVAILABLE',
        fromClient(() => {
          const { storage } = server.server.engine
          const taskStats = storage.taskStats.bind(storage)
          storage.taskStats = () =>
            Promise.reject(
              new StorageUnavailableError(undefined, { cause: new Error('connect ECONNREFUSED') }),
            )
          return client.taskStats().finally(() => (storage.taskStats = taskStats))
        }),
      ],
      [
        'a server fault',
        'INTERNAL_SERVER_ERROR',
        fromClient(() => {
          server.server.engine.list = () => Promise.reject(new Error('the storage fell over'))
          return client.executions.list()
        }),
      ],
      [
        'a watch open when the server shuts down',
        'SERVICE_UNAVAILABLE',
        fromClient(async () => {
          const { executionId } = await client.tasks.gate.enqueue({})
          // The raw RPC client: the handles' watch would reconnect.
          const events = await client.rpc.executions.watch({ id: executionId })
          await events.next()
          const stopping = server.server.stop()
          try {
            for (;;) if ((await events.next()).done) return
          } finally {
            await stopping
          }
        }),
      ],
    ]
    // The idempotency key must exist first.
    await client.tasks.double.enqueue({ n: 1 }, { idempotencyKey: 'k' })

    const observed = new Map<string, Set<number>>()
    for (const [what, expected, produce] of producers) {
      const { code, status } = await produce()
      expect(code, what).toBe(expected)
      observed.set(code, (observed.get(code) ?? new Set()).add(status))
    }

    const table = errorTable()
    expect([...observed.keys()].sort(), 'codes returned vs rows of the table').toEqual(
      [...table.keys()].sort(),
    )
    for (const [code, statuses] of observed) expect([...statuses], code).toEqual([table.get(code)])
    for (const code of Object.keys(errorMap)) expect(table.has(code), `contract code ${code}`).toBe(true)
  })
})
