import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newExecutionId, StorageUnavailableError, type NewExecution } from '@ratchet/core'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { testPostgresUrl, usePostgresTestDatabase } from '@ratchet/storage/testing'
import { isRetryableConflict, isUnavailable } from '../src/postgres/errors'

// What an outage looks like to the adapter, beyond a refused socket: every backend terminated
// (57P01), a database that refuses new connections (`ALTER DATABASE … ALLOW_CONNECTIONS false`:
// FATAL 55000), and both behind drizzle's "Failed query" error, which wraps the driver's. Each
// must come out as StorageUnavailableError (503 STORAGE_UNAVAILABLE at the API), not as an
// internal error; the multi-replica outage test found both missing.
const database = await usePostgresTestDatabase()

const codeError = (message: string, code: string, severity = 'ERROR') =>
  Object.assign(new Error(message), { code, severity })

describe('PostgreSQL error mapping', () => {
  it('reads the code of the error a drizzle query error wraps', () => {
    const wrapped = (cause: Error) => new Error('Failed query: select 1\nparams: ', { cause })
    expect(
      isUnavailable(wrapped(codeError('terminating connection due to administrator command', '57P01'))),
    ).toBe(true)
    expect(isUnavailable(wrapped(codeError('syntax error', '42601')))).toBe(false)
    expect(isRetryableConflict(wrapped(codeError('deadlock detected', '40P01')))).toBe(true)
    expect(isRetryableConflict(wrapped(codeError('duplicate key', '23505')))).toBe(false)
  })

  it('a database that refuses connections is unavailable; the same state in a query is not', () => {
    expect(
      isUnavailable(codeError('database "x" is not currently accepting connections', '55000', 'FATAL')),
    ).toBe(true)
    expect(
      isUnavailable(codeError('currval of sequence "s" is not yet defined in this session', '55000')),
    ).toBe(false)
  })
})

describe.skipIf(!database.available)('PostgreSQL: a database that goes away under the adapter', () => {
  let storage: PostgresStorage
  let admin: pg.Client
  beforeAll(async () => {
    storage = await openPostgresStorage({ url: database.url, poolSize: 2 })
    admin = new pg.Client({ connectionString: testPostgresUrl() })
    admin.on('error', () => {})
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.query(`ALTER DATABASE ${pg.escapeIdentifier(database.name)} ALLOW_CONNECTIONS true`)
    await admin?.end()
    await storage?.close()
  })

  const row = (): NewExecution => ({
    id: newExecutionId(Date.now()),
    taskId: 'job',
    input: '{}',
    maxAttempts: 3,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: null,
    runAt: Date.now(),
  })

  it('a backend terminated between two statements of a transaction: StorageUnavailableError, no uncaught error event', async () => {
    const uncaught: unknown[] = []
    const onUncaught = (error: unknown) => uncaught.push(error)
    process.on('uncaughtException', onUncaught)
    try {
      const attempt = storage.database.transaction(async (tx) => {
        const { pid } = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
        await admin.query('SELECT pg_terminate_backend($1)', [pid])
        // The connection learns of it while no statement of ours runs on it.
        await delay(300)
        await tx.query('SELECT 1')
      })
      await expect(attempt).rejects.toBeInstanceOf(StorageUnavailableError)
      expect(uncaught).toEqual([])
      // The broken connection was dropped: the next transaction gets a working one.
      expect(
        await storage.database.transaction(async (tx) => (await tx.query('SELECT 1 AS one')).rows),
      ).toEqual([{ one: 1 }])
    } finally {
      process.off('uncaughtException', onUncaught)
    }
  })

  it('a backend terminated while its connection is checked out and unused: no uncaught error event', async () => {
    const uncaught: unknown[] = []
    const onUncaught = (error: unknown) => uncaught.push(error)
    process.on('uncaughtException', onUncaught)
    try {
      const client = await storage.database.pool.connect()
      const { pid } = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
      await admin.query('SELECT pg_terminate_backend($1)', [pid])
      await delay(300)
      client.release(true)
      expect(uncaught).toEqual([])
      expect((await storage.database.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    } finally {
      process.off('uncaughtException', onUncaught)
    }
  })

  it('backends terminated and new connections refused: reads and writes throw StorageUnavailableError, then work again', async () => {
    await storage.enqueue([row()], Date.now())
    const name = pg.escapeIdentifier(database.name)
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
      database.name,
    ])
    // A drizzle-built read (list) and a raw statement (enqueue), twice: on the terminated
    // connections, then on new ones the database refuses.
    for (let i = 0; i < 2; i++) {
      await expect(storage.list({ limit: 10 })).rejects.toBeInstanceOf(StorageUnavailableError)
      await expect(storage.enqueue([row()], Date.now())).rejects.toBeInstanceOf(StorageUnavailableError)
    }
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`)
    expect((await storage.list({ limit: 10 })).length).toBe(1)
    await storage.enqueue([row()], Date.now())
    expect((await storage.list({ limit: 10 })).length).toBe(2)
  })
})
