/** Runs the `ratchet` bin from the sources, as a user's shell would, and collects what it printed. */
import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { RUN_SOURCES } from './child-server'

const ROOT = resolve(import.meta.dirname, '../../..')
const CLI = join(ROOT, 'apps/server/src/cli.ts')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** This process's environment without the variables that change what the CLI does. */
function baseEnv(): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !['RATCHET_URL', 'RATCHET_API_KEY', 'NO_COLOR', 'FORCE_COLOR', 'CI'].includes(name),
    ),
  )
}

/**
 * `ratchet <args>` to its end: its exit code and output. The child gets this process's
 * environment without the variables that change the CLI's behaviour (RATCHET_URL,
 * RATCHET_API_KEY, NO_COLOR, FORCE_COLOR, CI), then `env`.
 */
export async function ratchet(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...RUN_SOURCES, CLI, ...args], {
      cwd: ROOT,
      env: { ...baseEnv(), ...env },
      timeout: 30_000,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string }
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
  }
}

/** The JSON document a `--json` command printed, typed by the caller. */
export function json<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`)
  }
}

/**
 * `ratchet <args>` in a pseudo-terminal 100 columns wide (util-linux `script`), as in a user's
 * terminal: stdout and stderr are a TTY, so colours and the spinner are on. Both come back
 * mixed, in `stdout`, with the terminal's CRLF line ends.
 */
export async function ratchetInTerminal(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`
  const command = ['stty cols 100;', ...[process.execPath, ...RUN_SOURCES, CLI, ...args].map(quote)].join(' ')
  try {
    const { stdout, stderr } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], {
      cwd: ROOT,
      env: { ...baseEnv(), TERM: 'xterm', ...env },
      timeout: 30_000,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string }
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
  }
}
