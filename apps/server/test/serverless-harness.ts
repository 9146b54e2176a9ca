/**
 * The serverless-style app process (fixtures/serverless-app.ts) and a server process that runs
 * its functions (fixtures/app-functions-tasks.ts), for the app-hosted functions tests. Each
 * test gets a fresh folder; the steps' side effects are counted in files under it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, beforeEach } from 'vitest'
import { createClient, type RatchetClient } from '@ratchet/client'
import { RUN_SOURCES, freePort, killChildServers, startChildServer, type ChildServer } from './child-server'
import type { functions } from './fixtures/serverless-functions'
import { API_KEY } from './helpers'

const APP = join(import.meta.dirname, 'fixtures/serverless-app.ts')
export const APP_FUNCTIONS_TASKS = join(import.meta.dirname, 'fixtures/app-functions-tasks.ts')
export const APP_SECRET = 'serverless-secret-0123456789abcdef0123'

export interface AppOptions {
  /** Requests still open after this long are cut off; 0: never. @default 1_000 */
  dropAfterMs?: number
  /** DEPLOY: which version of `checkout` the app runs (see serverless-functions.ts). @default 'v1' */
  deploy?: string
  /** FUNCTIONS_RELEASE: release 2 adds `refund` and narrows `steps.isolated`'s input. @default 1 */
  release?: number
}

export interface ServerlessHarness {
  /** This test's folder. */
  readonly dir: string
  /** Starts the app on `port`; resolves once it listens. */
  startApp(port: number, options?: AppOptions): Promise<ChildProcess>
  /** SIGKILLs every app process of this test. */
  killApps(): Promise<void>
  /** The app on a free port, then a server (SQLite in this test's folder unless `databaseUrl`) on its functions. */
  start(
    options?: AppOptions & { databaseUrl?: string; env?: Record<string, string> },
  ): Promise<{ port: number; server: ChildServer; client: RatchetClient<typeof functions> }>
  /** Another server on the app listening on `port` (a second replica: give the first's `databaseUrl`). */
  startServer(
    port: number,
    options?: { databaseUrl?: string; env?: Record<string, string> },
  ): Promise<{ server: ChildServer; client: RatchetClient<typeof functions> }>
  /** The folder of the steps' side-effect files (RATCHET_TEST_MARKERS). */
  readonly markers: string
  /** How many times each step's side effect ran, for one execution. */
  effects(executionId: string): Record<string, number>
}

/** Registers the per-test set-up and clean-up, and returns the harness. */
export function useServerlessHarness(): ServerlessHarness {
  let dir = ''
  let markers = ''
  let apps: ChildProcess[] = []

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ratchet-serverless-'))
    markers = join(dir, 'markers')
    mkdirSync(markers)
  })

  const killApps = async () => {
    await Promise.all(apps.map(kill))
    apps = []
  }

  afterEach(async () => {
    await killChildServers()
    await killApps()
    rmSync(dir, { recursive: true, force: true })
  })

  const startApp = async (
    port: number,
    { dropAfterMs = 1_000, deploy = 'v1', release = 1 }: AppOptions = {},
  ): Promise<ChildProcess> => {
    const child = spawn(process.execPath, [...RUN_SOURCES, APP], {
      env: {
        ...process.env,
        PORT: String(port),
        APP_SECRET,
        RATCHET_TEST_MARKERS: markers,
        DROP_AFTER_MS: String(dropAfterMs),
        DEPLOY: deploy,
        FUNCTIONS_RELEASE: String(release),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    apps.push(child)
    const lines = createInterface({ input: child.stdout })
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the app exited (${code}) before listening`)))
      lines.once('line', () => resolve())
    })
    return child
  }

  const startServer: ServerlessHarness['startServer'] = async (port, { databaseUrl, env = {} } = {}) => {
    const server = await startChildServer({
      ...(databaseUrl !== undefined ? { databaseUrl } : { databaseFile: join(dir, 'ratchet.db') }),
      tasksModule: APP_FUNCTIONS_TASKS,
      env: {
        RATCHET_API_KEYS: `test:${API_KEY}`,
        APP_URL: `http://127.0.0.1:${port}`,
        APP_SECRET,
        ...env,
      },
    })
    return { server, client: createClient<typeof functions>({ url: server.url, apiKey: API_KEY }) }
  }

  return {
    get dir() {
      return dir
    },
    get markers() {
      return markers
    },
    startApp,
    killApps,
    startServer,
    async start({ databaseUrl, env, ...app } = {}) {
      const port = await freePort()
      await startApp(port, app)
      return {
        port,
        ...(await startServer(port, {
          ...(databaseUrl !== undefined ? { databaseUrl } : {}),
          ...(env ? { env } : {}),
        })),
      }
    },
    effects(executionId) {
      const file = join(markers, executionId)
      const counts: Record<string, number> = {}
      if (!existsSync(file)) return counts
      for (const line of readFileSync(file, 'utf8').trim().split('\n')) counts[line] = (counts[line] ?? 0) + 1
      return counts
    },
  }
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => (child.once('exit', () => resolve()), child.kill('SIGKILL')))
}
