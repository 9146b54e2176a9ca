/**
 * What every client command shares: the `--url`, `--api-key` and `--json` options, the client
 * they make, and one way to end (an exit code from exit-codes.ts, the failure printed once).
 */
import { Option, type Command } from 'commander'
import { createClient, type RatchetClient } from '@ratchet/client'
import { CliError, describeFailure, EXIT } from './exit-codes'
import type { Output } from './output'

export const DEFAULT_URL = 'http://127.0.0.1:8787'

export interface ClientCommandDeps {
  /** Where RATCHET_URL and RATCHET_API_KEY are read. */
  env: NodeJS.ProcessEnv
  output: Output
}

export interface ConnectionOptions {
  url?: string
  apiKey?: string
  json?: boolean
}

export interface CommandContext {
  client: RatchetClient<Record<string, never>>
  /** The server's URL, as the user gave it (for messages). */
  url: string
  output: Output
  /** `--json`: print one JSON document (JSON Lines for `tail`) instead of the human form. */
  json: boolean
}

/**
 * A client command ended with `exitCode` (0 included) and has already said why: `cli.ts`
 * flushes stdout and stderr and exits with the code at once, rather than waiting for the
 * HTTP client's idle keep-alive connections to close (most of a second).
 */
export class CommandExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`)
    this.name = 'CommandExit'
  }
}

/** Adds the options every client command takes. */
export function withConnectionOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', `the server (default: ${DEFAULT_URL}) [env: RATCHET_URL]`))
    .addOption(new Option('--api-key <key>', 'an API key of the server [env: RATCHET_API_KEY]'))
    .addOption(new Option('--json', 'print JSON for scripts instead of tables and colours'))
}

/** The URL and key: a flag wins over its variable, the variable over the default. */
export function resolveConnection(env: NodeJS.ProcessEnv, options: ConnectionOptions) {
  const url = options.url ?? (env.RATCHET_URL || undefined) ?? DEFAULT_URL
  const apiKey = options.apiKey ?? (env.RATCHET_API_KEY || undefined)
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new CliError(`--url (RATCHET_URL) must be an http(s) URL, got "${url}"`, EXIT.USAGE)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new CliError(`--url (RATCHET_URL) must be an http(s) URL, got "${url}"`, EXIT.USAGE)
  return { url, apiKey }
}

/**
 * Runs a client command: makes the client, runs `body`, and turns a failure into its message
 * on stderr and its exit code. Always throws `CommandExit` with the exit code: 0 after a
 * success, or what `body` returned.
 */
export async function runClientCommand(
  deps: ClientCommandDeps,
  options: ConnectionOptions,
  body: (context: CommandContext) => Promise<number | void>,
): Promise<never> {
  let url: string | undefined
  let exitCode: number
  try {
    const connection = resolveConnection(deps.env, options)
    url = connection.url
    const client = createClient<Record<string, never>>({
      url,
      ...(connection.apiKey ? { apiKey: connection.apiKey } : {}),
    })
    exitCode = (await body({ client, url, output: deps.output, json: options.json === true })) ?? EXIT.OK
  } catch (error) {
    const failure = describeFailure(error, url, deps.output.errColors)
    deps.output.err(failure.text)
    exitCode = failure.exitCode
  }
  throw new CommandExit(exitCode)
}
