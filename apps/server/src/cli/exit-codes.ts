/**
 * The exit codes of `ratchet`, and how a failed command is reported on stderr.
 *
 * | code | meaning                                                                          |
 * |------|----------------------------------------------------------------------------------|
 * | 0    | done                                                                             |
 * | 1    | the server answered an error (4xx: bad input, not found, conflict, wrong key);   |
 * |      | also `start`/`migrate` failing (a bad setting, a tasks module that cannot load)  |
 * | 2    | usage error: unknown command or option, missing or malformed argument            |
 * | 3    | the server is unreachable, or answered 5xx (try again later)                     |
 * | 4    | `enqueue --wait`: the execution ended failed, timed out or cancelled             |
 */
import { ORPCError } from '@ratchet/client'
import type { Colors } from './output'

export const EXIT = {
  OK: 0,
  SERVER_ERROR: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
  EXECUTION_FAILED: 4,
} as const

/** An error whose message is for the user, ending the command with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'CliError'
  }
}

interface Issue {
  path: (string | number)[]
  message: string
}

/** What of the request an API error blames, as lines under its message. */
function details(error: ORPCError<string, unknown>): string[] {
  const data = (error.data ?? {}) as Record<string, string | number | undefined>
  switch (error.code) {
    case 'INVALID_INPUT': {
      const issues = (data.issues ?? []) as unknown as Issue[]
      return issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`)
    }
    case 'UNKNOWN_TASK': {
      const known = (data.knownTaskIds ?? []) as unknown as string[]
      return [`taskId: ${String(data.taskId)}`, `known tasks: ${known.join(', ') || '(none)'}`]
    }
    case 'NOT_FOUND':
      return 'key' in data ? [`key: ${String(data.key)}`] : [`id: ${String(data.id)}`]
    case 'CONFLICT':
      return [
        ...(data.executionId !== undefined ? [`executionId: ${String(data.executionId)}`] : []),
        ...(data.status !== undefined ? [`status: ${String(data.status)}`] : []),
      ]
    case 'PAYLOAD_TOO_LARGE':
      return [`${String(data.field)}: ${String(data.sizeBytes)} bytes, limit ${String(data.limitBytes)}`]
    case 'UNAUTHORIZED':
      return ['give a key of the server with --api-key or RATCHET_API_KEY']
    default:
      return []
  }
}

/**
 * Why the request never got an answer (`ECONNREFUSED`, `ENOTFOUND`, `bad port`…), when that is
 * what happened: fetch rejects with `TypeError('fetch failed')`, the reason in its cause.
 */
export function networkCause(error: unknown): string | undefined {
  if (!(error instanceof TypeError) || error.message !== 'fetch failed') return undefined
  let cause: unknown = error.cause
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === 'string' && code !== '') return code
    if (!(cause.cause instanceof Error)) return cause.message
    cause = cause.cause
  }
  return 'fetch failed'
}

/**
 * Turns what a client call rejected with into the message and exit code the user gets:
 * an API error of 4xx → 1 with its code, message and the fields at fault; 5xx or a network
 * failure → 3; a `CliError` keeps its own code. Anything else is a bug: 1 with its message.
 */
export function describeFailure(error: unknown, url: string | undefined, colors: Colors) {
  if (error instanceof CliError) return { exitCode: error.exitCode, text: `ratchet: ${error.message}\n` }
  if (error instanceof ORPCError) {
    const typed = error as ORPCError<string, unknown>
    if (typed.status >= 500 || typed.status === 0) {
      return {
        exitCode: EXIT.UNAVAILABLE,
        text: `ratchet: the server at ${url ?? '?'} answered ${typed.status} ${typed.code}: ${typed.message}\n`,
      }
    }
    const lines = details(typed).map((line) => `  ${colors.dim(line)}\n`)
    return {
      exitCode: EXIT.SERVER_ERROR,
      text: `ratchet: ${colors.red(typed.code)}: ${typed.message}\n${lines.join('')}`,
    }
  }
  const cause = networkCause(error)
  if (cause !== undefined) {
    return {
      exitCode: EXIT.UNAVAILABLE,
      text: `ratchet: cannot reach the server at ${url ?? '?'} (${cause}); is it running? (--url or RATCHET_URL)\n`,
    }
  }
  const message = error instanceof Error ? error.message : String(error)
  return { exitCode: EXIT.SERVER_ERROR, text: `ratchet: ${message}\n` }
}
