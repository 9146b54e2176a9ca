import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type RatchetServer } from '../src/index'
import { killChildServers, startChildServer } from './child-server'
import { tasks } from './fixtures/tasks'
import { RUN_SOURCES } from './child-server'
import { API_KEY } from './helpers'

const ROOT = resolve(import.meta.dirname, '../../..')
const dirs: string[] = []
const servers: RatchetServer[] = []

afterEach(async () => {
  await killChildServers()
  for (const server of servers.splice(0)) await server.stop()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function databaseUrl() {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-lock-'))
  dirs.push(dir)
  return `file:${join(dir, 'ratchet.db')}`
}

/** What `promise` rejects with; fails the test if it resolves. */
const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error as Error,
  )

const open = async (url: string) => {
  const server = await createServer({
    tasks,
    databaseUrl: url,
    port: 0,
    apiKeys: [{ name: 't', secret: API_KEY }],
    drainMs: 0,
  })
  servers.push(server)
  await server.start()
  return server
}

describe('one server process per SQLite file', () => {
  it('refuses a second server on the same file, and allows one once the first stopped', async () => {
    const url = databaseUrl()
    const first = await open(url)
    const refused = await rejection(open(url))
    expect(refused.message).toMatch(/another Ratchet server is using .*ratchet\.db/)
    // It names what can be done: stop the other, another file, or PostgreSQL for several.
    expect(refused.message).toContain('DATABASE_URL=file:')
    expect(refused.message).toContain('move to PostgreSQL to run several')
    await first.stop()
    const second = await open(url)
    expect(second.engine.executor.isRunning).toBe(true)
  })

  it('a second server process on the same file exits with a message naming what to do', async () => {
    const url = databaseUrl()
    const databaseFile = url.slice('file:'.length)
    const tasksModule = join(import.meta.dirname, 'fixtures/tasks.ts')
    await startChildServer({ databaseFile, tasksModule })
    const second = await rejection(startChildServer({ databaseFile, tasksModule }))
    expect(second.message).toMatch(/exited with 1 before listening/)
    expect(second.message).toMatch(/ratchet: another Ratchet server is using .*ratchet\.db/)
    expect(second.message).toContain(
      'stop the other server, start this one on another file (DATABASE_URL=file:<path>), or move to PostgreSQL to run several',
    )
  })

  it('sees a lock held by another process, and gets it once that process is killed', async () => {
    const url = databaseUrl()
    const child = spawn(process.execPath, [...RUN_SOURCES, 'apps/server/src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: '0',
        DATABASE_URL: url,
        RATCHET_TASKS: join(import.meta.dirname, 'fixtures/tasks.ts'),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ratchet server listening')) resolve()
      })
      child.once('exit', (code) => reject(new Error(`server exited with ${String(code)}`)))
    })
    await expect(open(url)).rejects.toThrow(/another Ratchet server is using/)
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    // the OS released the lock with the process
    expect((await open(url)).engine.executor.isRunning).toBe(true)
  })
})
