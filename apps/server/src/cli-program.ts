import { readFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import { addClientCommands, CLIENT_HELP } from './cli/client-commands'
import { addCopyCommand, type CopyCommandDeps } from './cli/copy-command'
import { processOutput, type Output } from './cli/output'
import { configFromEnv, type EnvConfig } from './config'

/** One flag of `ratchet start`: it overrides the environment variable of the same meaning. */
interface Flag {
  flags: string
  /** The option's key in commander's parsed options. */
  key: string
  env: string
  description: string
  choices?: readonly string[]
}

const START_FLAGS: readonly Flag[] = [
  {
    flags: '-t, --tasks <module>',
    key: 'tasks',
    env: 'RATCHET_TASKS',
    description:
      'your tasks module (.js, .mjs, .ts, .mts): exports `tasks`, and optionally `events` (default: the example tasks)',
  },
  {
    flags: '-p, --port <port>',
    key: 'port',
    env: 'PORT',
    description: 'HTTP port; 0 picks a free one (default: 8787)',
  },
  {
    flags: '--host <host>',
    key: 'host',
    env: 'HOST',
    description:
      'interface to listen on; loopback only without API keys (default: 127.0.0.1, 0.0.0.0 with keys)',
  },
  {
    flags: '--database-url <url>',
    key: 'databaseUrl',
    env: 'DATABASE_URL',
    description:
      'the database: a SQLite file, file:<path>, or PostgreSQL, postgres://user:password@host:5432/db (default: file:./.data/ratchet.db)',
  },
  {
    flags: '--pg-pool-size <n>',
    key: 'pgPoolSize',
    env: 'RATCHET_PG_POOL_SIZE',
    description: 'PostgreSQL only: connections in the pool of this server (default: 10)',
  },
  {
    flags: '--api-keys <keys>',
    key: 'apiKeys',
    env: 'RATCHET_API_KEYS',
    description:
      'comma-separated name:secret entries, secrets of 16+ characters (prefer the variable: other users of the machine can read a command line)',
  },
  {
    flags: '--log-level <level>',
    key: 'logLevel',
    env: 'LOG_LEVEL',
    description: 'JSON log level (default: info)',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  },
  {
    flags: '--concurrency <n>',
    key: 'concurrency',
    env: 'RATCHET_CONCURRENCY',
    description: 'runs at once (default: 25)',
  },
  {
    flags: '--lease-ms <ms>',
    key: 'leaseMs',
    env: 'RATCHET_LEASE_MS',
    description: "a claim's lease (default: 30000)",
  },
  {
    flags: '--poll-interval-ms <ms>',
    key: 'pollIntervalMs',
    env: 'RATCHET_POLL_INTERVAL_MS',
    description: 'safety-net pass for lease recovery (default: 5000)',
  },
  {
    flags: '--drain-ms <ms>',
    key: 'drainMs',
    env: 'RATCHET_DRAIN_MS',
    description: 'on SIGTERM, how long running attempts may finish (default: 30000)',
  },
  {
    flags: '--short-sleep-ms <ms>',
    key: 'shortSleepMs',
    env: 'RATCHET_SHORT_SLEEP_MS',
    description: 'durable sleeps this short pass in memory; 0 parks every sleep (default: 1000)',
  },
  {
    flags: '--retention-ms <ms>',
    key: 'retentionMs',
    env: 'RATCHET_RETENTION_MS',
    description:
      "how long finished executions (with history, steps, keys) and events are kept, 1000 ms to 10 years, or 'forever' (default: 604800000, 7 days)",
  },
  {
    flags: '--max-payload-bytes <bytes>',
    key: 'maxPayloadBytes',
    env: 'RATCHET_MAX_PAYLOAD_BYTES',
    description: 'largest input, output or step value, in bytes of JSON (default: 1048576)',
  },
  {
    flags: '--sqlite-synchronous <mode>',
    key: 'sqliteSynchronous',
    env: 'RATCHET_SQLITE_SYNCHRONOUS',
    description: 'normal: commits survive a process crash; full: also a power loss (default: normal)',
    choices: ['normal', 'full'],
  },
  {
    flags: '--attribute-stray-errors <when>',
    key: 'attributeStrayErrors',
    env: 'RATCHET_ATTRIBUTE_STRAY_ERRORS',
    description:
      'after-first: trace errors that escape task code to their execution once one has escaped; always: from the start (costs throughput) (default: after-first)',
    choices: ['after-first', 'always'],
  },
  {
    flags: '--metrics <mode>',
    key: 'metrics',
    env: 'RATCHET_METRICS',
    description:
      'Prometheus /metrics: key (needs an API key, like the API), public (no key), off (404) (default: key)',
    choices: ['key', 'public', 'off'],
  },
  {
    flags: '--tracing <on|off>',
    key: 'tracing',
    env: 'RATCHET_TRACING',
    description:
      'OpenTelemetry spans per attempt and step; they record only once you register an SDK (default: on)',
    choices: ['on', 'off'],
  },
  {
    flags: '--secure-cookies <bool>',
    key: 'secureCookies',
    env: 'RATCHET_SECURE_COOKIES',
    description:
      "true: the dashboard's session cookie is Secure (browsers reach the server over https) (default: false)",
    choices: ['true', 'false'],
  },
]

export interface CliDeps extends Pick<CopyCommandDeps, 'copySqlite' | 'writeError' | 'progressEveryMs'> {
  /** The environment the flags override. @default process.env */
  env?: NodeJS.ProcessEnv
  /** Starts the server. @default runServer (./run-server.ts) */
  start?: (config: EnvConfig) => Promise<void>
  /** Applies the migrations. @default migrateDatabase (./migrate.ts) */
  migrate?: (databaseUrl: string) => Promise<{ database: string }>
  /** Where `migrate` and `copy-sqlite` report. @default process.stdout */
  write?: (text: string) => void
  /** Where the client commands print, with their colours. @default processOutput(env) */
  output?: Output
}

/**
 * The environment with each given flag in place of its variable. A configuration error then
 * names the flag (`--port (PORT) must be ...`) instead of the variable the user did not set.
 */
function configFrom(
  env: NodeJS.ProcessEnv,
  options: Record<string, string | undefined>,
  flags: readonly Flag[],
) {
  const merged = { ...env }
  const given: Flag[] = []
  for (const flag of flags) {
    const value = options[flag.key]
    if (value === undefined) continue
    merged[flag.env] = value
    given.push(flag)
  }
  try {
    return configFromEnv(merged)
  } catch (error) {
    let message = (error as Error).message
    for (const flag of given) {
      const long = /--[\w-]+/.exec(flag.flags)![0]
      message = message.replace(new RegExp(`\\b${flag.env}\\b`, 'g'), `${long} (${flag.env})`)
    }
    throw new Error(message, { cause: error })
  }
}

function addFlags(command: Command, flags: readonly Flag[]): Command {
  for (const flag of flags) {
    const option = new Option(flag.flags, `${flag.description} [env: ${flag.env}]`)
    command.addOption(flag.choices ? option.choices(flag.choices) : option)
  }
  return command
}

function version(): string {
  // package.json is one level above both src/ and dist/.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

/**
 * The `ratchet` command line: `ratchet start` runs the server (flags override the environment
 * variables of the README's configuration table), `ratchet migrate` applies the database
 * migrations and exits, `ratchet copy-sqlite` copies a stopped server's SQLite database into an
 * empty PostgreSQL one (cli/copy-command.ts); the client commands (`enqueue`, `get`, `ls`, `history`, `cancel`,
 * `retry`, `signal`, `wakeup`, `tail`) talk to a running server (see cli/client-commands.ts).
 *
 * Failure semantics: a usage error throws commander's `CommanderError` (exit code 2 in
 * cli.ts) after printing it; a client command that failed has printed why and throws
 * `CommandExit` with its exit code (cli/exit-codes.ts), as does `copy-sqlite`; `start` and
 * `migrate` reject with an error whose message is meant for the user (exit code 1).
 */
export function createCli(deps: CliDeps = {}): Command {
  const env = deps.env ?? process.env
  const program = new Command('ratchet')
    .description('Ratchet: a durable-execution server for TypeScript')
    .version(version(), '-v, --version')
    .exitOverride()
    .showHelpAfterError('(see ratchet --help, or ratchet <command> --help)')
    .addHelpText('after', CLIENT_HELP)

  addFlags(
    program
      .command('start')
      .description('start the server on your tasks module (SQLite or PostgreSQL, HTTP API at /rpc and /api)')
      .addHelpText(
        'after',
        `
Every flag overrides the environment variable named after it; unset, the variable's value
or the default applies. A TypeScript tasks module is compiled as it loads (tsx); the packages
it imports (zod, @ratchet/core, ...) resolve from its own project.

Examples:
  $ npx ratchet start --tasks ./src/tasks.ts
  $ RATCHET_API_KEYS=web:<secret> npx ratchet start --tasks ./dist/tasks.js --port 8080`,
      ),
    START_FLAGS,
  ).action(async (options: Record<string, string | undefined>) => {
    const config = configFrom(env, options, START_FLAGS)
    // The server's modules (storage, drivers, HTTP) load only for the commands that need them:
    // the client commands start in a fraction of the time.
    const start = deps.start ?? (await import('./run-server')).runServer
    await start(config)
  })

  const databaseFlag = START_FLAGS.filter((flag) => flag.key === 'databaseUrl')
  addFlags(
    program
      .command('migrate')
      .description('apply pending database migrations and exit (`start` applies them too)'),
    databaseFlag,
  ).action(async (options: Record<string, string | undefined>) => {
    const { databaseUrl } = configFrom(env, options, databaseFlag)
    const migrate = deps.migrate ?? (await import('./migrate')).migrateDatabase
    const { database } = await migrate(databaseUrl)
    ;(deps.write ?? ((text) => process.stdout.write(text)))(`ratchet: ${database} is migrated\n`)
  })

  addCopyCommand(program, deps)

  addClientCommands(program, { env, output: deps.output ?? processOutput(env) })
  return program
}
