import { describe, expect, it } from 'vitest'
import { createCli } from './cli-program'
import type { EnvConfig } from './config'

/** Parses `args` as `ratchet <args>` and returns what `start` or `migrate` was given. */
async function parse(args: string[], env: NodeJS.ProcessEnv = {}) {
  const started: EnvConfig[] = []
  const migrated: string[] = []
  const output: string[] = []
  const program = createCli({
    env,
    start: (config) => (started.push(config), Promise.resolve()),
    migrate: (databaseUrl) => (migrated.push(databaseUrl), Promise.resolve({ database: 'db.sqlite' })),
    write: (text) => output.push(text),
  })
  program.exitOverride()
  for (const command of program.commands) command.exitOverride()
  program.configureOutput({ writeOut: (text) => output.push(text), writeErr: (text) => output.push(text) })
  for (const command of program.commands)
    command.configureOutput({ writeOut: (text) => output.push(text), writeErr: (text) => output.push(text) })
  await program.parseAsync(args, { from: 'user' })
  return { started, migrated, output: output.join('') }
}

describe('ratchet start', () => {
  it('reads the environment when no flag is given', async () => {
    const { started } = await parse(['start'], { PORT: '9000', RATCHET_TASKS: './env-tasks.ts' })
    expect(started).toHaveLength(1)
    expect(started[0]).toMatchObject({ port: 9000, tasksModule: './env-tasks.ts', concurrency: 25 })
  })

  it('flags override the environment, one for each variable', async () => {
    const { started } = await parse(
      [
        'start',
        '--tasks',
        './src/tasks.ts',
        '--port',
        '0',
        '--host',
        '0.0.0.0',
        '--database-url',
        'file:/tmp/x.db',
        '--api-keys',
        'web:0123456789abcdef0123',
        '--log-level',
        'warn',
        '--concurrency',
        '3',
        '--lease-ms',
        '4000',
        '--poll-interval-ms',
        '500',
        '--drain-ms',
        '0',
        '--short-sleep-ms',
        '0',
        '--max-payload-bytes',
        '2048',
        '--sqlite-synchronous',
        'full',
      ],
      { PORT: '9000', RATCHET_TASKS: './env-tasks.ts', RATCHET_CONCURRENCY: '7', LOG_LEVEL: 'debug' },
    )
    expect(started[0]).toMatchObject({
      tasksModule: './src/tasks.ts',
      port: 0,
      host: '0.0.0.0',
      hostFromEnv: true,
      databaseUrl: 'file:/tmp/x.db',
      apiKeys: [{ name: 'web' }],
      logLevel: 'warn',
      concurrency: 3,
      leaseMs: 4000,
      pollIntervalMs: 500,
      drainMs: 0,
      shortSleepMs: 0,
      maxPayloadBytes: 2048,
      sqliteSynchronous: 'full',
    })
  })

  it('names the flag, not only its variable, in a configuration error, and starts nothing', async () => {
    let message = ''
    const started: EnvConfig[] = []
    try {
      await createCli({ env: { RATCHET_DRAIN_MS: '-1' }, start: (c) => (started.push(c), Promise.resolve()) })
        .exitOverride()
        .parseAsync(['start', '--port', 'abc', '--concurrency', '0', '--database-url', 'postgres://db/'], {
          from: 'user',
        })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('--port (PORT) must be an integer from 0 to 65535, got "abc"')
    expect(message).toContain(
      '--concurrency (RATCHET_CONCURRENCY) must be an integer from 1 to 10000, got "0"',
    )
    expect(message).toContain('--database-url (DATABASE_URL): "postgres://db/" names no database')
    // Set in the environment, not by a flag: named as the variable alone.
    expect(message).toMatch(/- RATCHET_DRAIN_MS must be an integer/)
    expect(started).toEqual([])
  })

  it('refuses a value outside a flag’s choices before starting', async () => {
    await expect(parse(['start', '--sqlite-synchronous', 'off'])).rejects.toThrow(
      /argument 'off' is invalid\. Allowed choices are normal, full/,
    )
  })

  it('--help lists every flag with its environment variable', () => {
    const start = createCli({ env: {} }).commands.find((c) => c.name() === 'start')!
    const help = start.configureHelp({ helpWidth: 1000 }).helpInformation()
    for (const name of [
      'RATCHET_TASKS',
      'PORT',
      'HOST',
      'DATABASE_URL',
      'RATCHET_API_KEYS',
      'LOG_LEVEL',
      'RATCHET_CONCURRENCY',
      'RATCHET_LEASE_MS',
      'RATCHET_POLL_INTERVAL_MS',
      'RATCHET_DRAIN_MS',
      'RATCHET_SHORT_SLEEP_MS',
      'RATCHET_MAX_PAYLOAD_BYTES',
      'RATCHET_SQLITE_SYNCHRONOUS',
    ])
      expect(help).toContain(`[env: ${name}]`)
    expect(help).toContain('--tasks <module>')
  })
})

describe('ratchet migrate', () => {
  it('migrates the database of --database-url, else of DATABASE_URL', async () => {
    expect(
      (await parse(['migrate', '--database-url', 'file:/tmp/a.db'], { DATABASE_URL: 'file:b.db' })).migrated,
    ).toEqual(['file:/tmp/a.db'])
    const { migrated, output } = await parse(['migrate'], { DATABASE_URL: 'file:b.db' })
    expect(migrated).toEqual(['file:b.db'])
    expect(output).toBe('ratchet: db.sqlite is migrated\n')
  })
})

describe('ratchet --version', () => {
  it('prints the package version', () => {
    expect(createCli({ env: {} }).version()).toBe('0.1.0')
  })
})
