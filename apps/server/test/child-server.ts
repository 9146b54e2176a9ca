/**
 * A real server (`npm start`'s entry point, `src/main.ts`) in a child process, for tests that
 * SIGKILL it, restart it on the same SQLite file, run several replicas on one PostgreSQL
 * database, or read what the production logger prints.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'

const ROOT = resolve(import.meta.dirname, '../../..')
const MAIN = join(ROOT, 'apps/server/src/main.ts')
const CLI = join(ROOT, 'apps/server/src/cli.ts')

/**
 * Node arguments that run a repository TypeScript file as `npm run dev` does: tsx compiles it,
 * and the `@ratchet/source` export condition resolves workspace packages to their sources
 * (nothing needs to be built first).
 */
export const RUN_SOURCES = ['--conditions=@ratchet/source', '--import', 'tsx']

export interface ChildServer {
  process: ChildProcess
  url: string
  /** Every JSON line printed on stdout so far. */
  logs: Record<string, unknown>[]
  /** Everything printed on stdout so far, unparsed. */
  stdout(): string
  exited: Promise<number | null>
}

/** Where the server keeps its state: a SQLite file, or any DATABASE_URL (e.g. `postgres://…`). */
export type ChildServerDatabase =
  | {
      /** The SQLite file (DATABASE_URL=file:<it>). */
      databaseFile: string
      databaseUrl?: never
    }
  | {
      /** DATABASE_URL as given (a PostgreSQL database shared by several replicas). */
      databaseUrl: string
      databaseFile?: never
    }

export type ChildServerOptions = ChildServerDatabase & {
  /** RATCHET_TASKS. */
  tasksModule: string
  /** @default 0 (a free port) */
  port?: number
  /** More environment variables (RATCHET_API_KEYS, LOG_LEVEL, ...). */
  env?: Record<string, string>
  /** Run the `ratchet` CLI (`src/cli.ts`) with these arguments instead of `src/main.ts`. */
  cli?: string[]
  /**
   * The server is expected to die at start-up (a task that kills it, run as soon as it is
   * claimed): resolve (with `url` empty) when it exits before its listening line came through,
   * which a SIGKILL can cut off, instead of rejecting.
   */
  mayExitBeforeListening?: boolean
  /** How long start-up may take before it counts as failed. @default 20_000 */
  startTimeoutMs?: number
}

const running = new Set<ChildProcess>()

/** Starts the server and resolves once it logged that it listens. */
export async function startChildServer(options: ChildServerOptions): Promise<ChildServer> {
  const entry = options.cli ? [CLI, ...options.cli] : [MAIN]
  const child = spawn(process.execPath, [...RUN_SOURCES, ...entry], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(options.port ?? 0),
      HOST: '127.0.0.1',
      DATABASE_URL: options.databaseUrl ?? `file:${options.databaseFile}`,
      RATCHET_TASKS: options.tasksModule,
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  child.once('exit', () => running.delete(child))
  const logs: Record<string, unknown>[] = []
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start; stderr: ${stderr}`)),
      options.startTimeoutMs ?? 20_000,
    )
    createInterface({ input: child.stdout }).on('line', (line) => {
      stdout += `${line}\n`
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      logs.push(entry)
      if (entry.msg === 'ratchet server listening') {
        clearTimeout(timer)
        resolve(entry.url as string)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (options.mayExitBeforeListening) resolve('')
      else reject(new Error(`server exited with ${String(code)} before listening; stderr: ${stderr}`))
    })
  })
  return { process: child, url, logs, stdout: () => stdout, exited }
}

/** SIGKILLs every child server still running (for `afterEach`). */
export async function killChildServers(): Promise<void> {
  const exits = [...running].map(
    (child) => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.kill('SIGKILL'))),
  )
  await Promise.all(exits)
}

/** A port that was free a moment ago, for a server that must come back on the same URL. */
export async function freePort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
