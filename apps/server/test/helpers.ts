import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TaskMap } from '@ratchet/core'
import { createServer, type RatchetServer, type ServerOptions } from '../src/index'

export const API_KEY = 'test-key-0123456789abcdef'

export interface TestServer {
  server: RatchetServer
  url: string
  dir: string
  close(): Promise<void>
}

/** A real server on an ephemeral port with a fresh SQLite file in a temp folder. */
export async function startTestServer(
  tasks: TaskMap,
  options: Partial<ServerOptions> = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-server-'))
  const server = await createServer({
    tasks,
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    apiKeys: [{ name: 'test', secret: API_KEY }],
    drainMs: 1000,
    // No dashboard unless a test asks for one: whether apps/server/dist/dashboard was built must
    // not change what a path outside /api answers.
    dashboardDir: false,
    ...options,
  })
  const { url } = await server.start()
  return {
    server,
    url,
    dir,
    async close() {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Resolves when `predicate` holds, checking every 10 ms; rejects after `timeoutMs`. */
export async function until<T>(
  read: () => Promise<T> | T,
  predicate: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (predicate(value)) return value
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
