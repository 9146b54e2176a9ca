/**
 * What the external-consumer test (run.ts) runs its steps with: PASS/FAIL lines, child
 * commands with their output, the packed server started and stopped as a user would, and the
 * web app's type checks.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const API_KEY = 'consumer-test-key-0123456789'

/** PASS and FAIL lines so far. */
export const tally = { passed: 0, failed: 0 }

/** Prints a PASS or FAIL line and counts it. */
export function check(ok: boolean, what: string, detail = ''): boolean {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`)
  if (ok) tally.passed++
  else tally.failed++
  return ok
}

/** The environment for child commands, without the npm_* variables of `npm run` itself. */
export const CHILD_ENV: Record<string, string | undefined> = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') && name !== 'INIT_CWD'),
  ),
  NO_COLOR: '1',
}

// eslint-disable-next-line no-control-regex -- ANSI colour codes
export const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '')

export interface Result {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs a command to its end (killed after `timeoutMs`) and returns its output. */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Result> {
  const started = Date.now()
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...CHILD_ENV, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolvePromise({ code, stdout: plain(stdout), stderr: plain(stderr), ms: Date.now() - started })
    })
  })
}

/** Throws with the command's output when it failed: a step the rest depends on. */
export function must(result: Result, what: string): Result {
  if (result.code !== 0)
    throw new Error(
      `${what} exited ${String(result.code)}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`,
    )
  return result
}

export interface Server {
  process: ChildProcess
  url: string
  logs: Record<string, unknown>[]
  exited: Promise<number | null>
}

/**
 * `npx ratchet start <args>` in `cwd`, resolved once it logs that it listens. In a process
 * group of its own, as in a terminal: npx runs the bin through `sh -c`, which does not pass a
 * signal on, so Ctrl-C (or stopRatchet) signals the whole group.
 */
export async function startRatchet(cwd: string, args: string[], dataDir: string): Promise<Server> {
  const child = spawn('npx', ['--no-install', 'ratchet', 'start', ...args], {
    cwd,
    detached: true,
    env: {
      ...CHILD_ENV,
      PORT: '0',
      RATCHET_API_KEYS: `web:${API_KEY}`,
      HOST: '127.0.0.1',
      DATABASE_URL: `file:${join(dataDir, 'ratchet.db')}`,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Record<string, unknown>[] = []
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  // npx's own exit is not the server's (sh dies at once on SIGTERM while the server drains):
  // the server has exited once the stdout pipe it shares is closed.
  const exited = new Promise<number | null>((resolveExit) =>
    child.stdout.once('close', () => resolveExit(child.exitCode)),
  )
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ratchet start did not listen within 30 s: ${stderr}`)),
      30_000,
    )
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>
        logs.push(entry)
        if (entry.msg === 'ratchet server listening') {
          clearTimeout(timer)
          resolveUrl(entry.url as string)
        }
      } catch {
        // not a log line
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`ratchet start exited ${String(code)} before listening: ${stderr}`))
    })
  })
  return { process: child, url, logs, exited }
}

/** SIGTERM to the server's process group; resolves once it exited, or 'timeout' after 40 s (then SIGKILL). */
export async function stopRatchet(server: Server): Promise<number | null | 'timeout'> {
  const group = -server.process.pid!
  process.kill(group, 'SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    server.exited,
    new Promise<'timeout'>((resolveTimeout) => (timer = setTimeout(() => resolveTimeout('timeout'), 40_000))),
  ])
  clearTimeout(timer)
  if (result === 'timeout') process.kill(group, 'SIGKILL')
  return result
}

/** The tsconfig of a check that must fail: `base` compiling only `src/wrong-input.ts`. */
function wrongInputConfig(web: string, base: string): string {
  const file = `tsconfig.wrong-input.${base.split('.')[1]}.json`
  writeFileSync(
    join(web, file),
    JSON.stringify({ extends: `./${base}`, files: ['src/wrong-input.ts'] }, null, 2),
  )
  return file
}

export async function typecheck(web: string, tsconfig: string, label: string): Promise<void> {
  const ok = await run('npx', ['--no-install', 'tsc', '-p', tsconfig], { cwd: web })
  check(
    ok.code === 0,
    `${label}: tsc --noEmit of a web app type-importing the tasks module (strict, DOM lib, skipLibCheck false)`,
    ok.code === 0 ? `${ok.ms} ms` : ok.stdout + ok.stderr,
  )
  const wrong = await run('npx', ['--no-install', 'tsc', '-p', wrongInputConfig(web, tsconfig)], { cwd: web })
  const errors = wrong.stdout.split('\n').filter((line) => / error TS\d+:/.test(line))
  check(
    wrong.code !== 0 &&
      errors.length === 1 &&
      /^src\/wrong-input\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'\./.test(
        errors[0]!,
      ),
    `${label}: a wrong input type (to: 42 for sendEmail's string) is compile error TS2322`,
    errors.join(' | ') || `tsc exited ${String(wrong.code)}: ${wrong.stdout}${wrong.stderr}`,
  )
}
