import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type RatchetServer } from '../src/index'
import { tasks } from './fixtures/tasks'
import { RUN_SOURCES } from './child-server'
import { API_KEY } from './helpers'

const ROOT = resolve(import.meta.dirname, '../../..')
const dirs: string[] = []
const servers: RatchetServer[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function databaseUrl() {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-lock-'))
  dirs.push(dir)
  return `file:${join(dir, 'ratchet.db')}`
}

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
    await expect(open(url)).rejects.toThrow(/another Ratchet server is using .*ratchet\.db/)
    await first.stop()
    const second = await open(url)
    expect(second.engine.executor.isRunning).toBe(true)
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
