/**
 * `ratchet copy-sqlite`'s flags, messages and exit codes, with the copy itself replaced (the
 * real copy is tested in packages/storage and, from outside, in test/copy-sqlite.test.ts).
 */
import { CommanderError } from 'commander'
import { describe, expect, it } from 'vitest'
import { StorageUnavailableError } from '@ratchet/core'
import {
  CopyRefusedError,
  DatabaseInUseError,
  type CopyReport,
  type CopySqliteToPostgresOptions,
} from '@ratchet/storage'
import { createCli } from '../cli-program'
import { CommandExit } from './context'

const REPORT: CopyReport = {
  tables: [
    { table: 'executions', rows: 12_345 },
    { table: 'execution_history', rows: 50_000 },
    { table: 'execution_steps', rows: 7 },
    { table: 'execution_signals', rows: 0 },
    { table: 'events', rows: 2 },
  ],
  unfinished: { queued: 3, waiting: 2, running: 1 },
  lastLeaseExpiresAt: Date.UTC(2030, 0, 1, 0, 0, 30),
  ms: 1234,
}

/** Runs `ratchet <args>`; what the copy was given, what was printed, and the exit code. */
async function run(args: string[], copy: (options: CopySqliteToPostgresOptions) => Promise<CopyReport>) {
  const calls: CopySqliteToPostgresOptions[] = []
  const out: string[] = []
  const err: string[] = []
  const program = createCli({
    env: {},
    write: (text) => out.push(text),
    writeError: (text) => err.push(text),
    progressEveryMs: 0,
    copySqlite: (options) => (calls.push(options), copy(options)),
  })
  for (const command of [program, ...program.commands])
    command.exitOverride().configureOutput({ writeOut: (t) => out.push(t), writeErr: (t) => err.push(t) })
  let exitCode = 0
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (error) {
    if (error instanceof CommandExit) exitCode = error.exitCode
    else if (error instanceof CommanderError)
      exitCode = 2 // as cli.ts maps it
    else throw error
  }
  return { calls, out: out.join(''), err: err.join(''), exitCode }
}

const copied = () => Promise.resolve(REPORT)
const failing = (error: Error) => () => Promise.reject(error)

describe('ratchet copy-sqlite', () => {
  it('copies --from into --to and prints the rows per table, the time and what comes next', async () => {
    const { calls, out, err, exitCode } = await run(
      ['copy-sqlite', '--from', 'file:/srv/ratchet.db', '--to', 'postgres://ratchet:s3cret@db:5432/ratchet'],
      copied,
    )
    expect(exitCode).toBe(0)
    expect(calls).toMatchObject([
      { sqliteFilename: '/srv/ratchet.db', postgresUrl: 'postgres://ratchet:s3cret@db:5432/ratchet' },
    ])
    expect(out).toBe(
      [
        'ratchet: copied /srv/ratchet.db into PostgreSQL database "ratchet" on db:5432 in 1.2 s',
        '  executions         12,345',
        '  execution_history  50,000',
        '  execution_steps         7',
        '  execution_signals       0',
        '  events                  2',
        'unfinished executions: 3 queued, 2 waiting, 1 running; a server on PostgreSQL carries them on',
        '  the running ones lost their server (it was killed, not stopped): a server on PostgreSQL recovers each once its lease has expired (the last at 2030-01-01T00:00:30.000Z), and runs it again',
        'next: start the server with DATABASE_URL set to the --to URL; keep the SQLite file until you have checked',
        '',
      ].join('\n'),
    )
    expect(err).toBe('')
    expect(out).not.toContain('s3cret')
  })

  it('reads the server default file without --from; sqlite: and bare paths work too', async () => {
    expect((await run(['copy-sqlite', '--to', 'postgres://h/db'], copied)).calls[0]!.sqliteFilename).toBe(
      './.data/ratchet.db',
    )
    expect(
      (await run(['copy-sqlite', '--from', 'data/x.db', '--to', 'postgres://h/db'], copied)).calls[0],
    ).toMatchObject({ sqliteFilename: 'data/x.db' })
    expect(
      (await run(['copy-sqlite', '--from', 'sqlite:///abs/x.db', '--to', 'postgresql://h/db'], copied))
        .calls[0],
    ).toMatchObject({ sqliteFilename: '/abs/x.db', postgresUrl: 'postgresql://h/db' })
  })

  it('--json prints the summary as one JSON object, the password masked', async () => {
    const { out } = await run(
      ['copy-sqlite', '--from', 'a.db', '--to', 'postgres://u:pw@h:5432/db', '--json'],
      copied,
    )
    expect(JSON.parse(out)).toEqual({
      from: 'a.db',
      to: 'postgres://u:***@h:5432/db',
      tables: {
        executions: 12_345,
        execution_history: 50_000,
        execution_steps: 7,
        execution_signals: 0,
        events: 2,
      },
      unfinished: { queued: 3, waiting: 2, running: 1 },
      lastLeaseExpiresAt: REPORT.lastLeaseExpiresAt,
      ms: 1234,
    })
  })

  it('prints progress and the later stages on stderr', async () => {
    const { err } = await run(['copy-sqlite', '--to', 'postgres://h/db'], (options) => {
      options.onProgress!({ table: 'execution_history', copied: 5000, total: 20_000 })
      options.onStage!('indexing')
      return copied()
    })
    expect(err).toBe(
      'ratchet: copy-sqlite: execution_history: 5,000 of 20,000 rows (25%)\n' +
        'ratchet: copy-sqlite: every row is in; building the indexes\n',
    )
  })

  it.each([
    [['copy-sqlite'], "error: required option '--to <url>' not specified"],
    [
      ['copy-sqlite', '--to', 'file:x.db'],
      '--to must be a PostgreSQL URL (postgres://user@host:5432/database), got "file:x.db"',
    ],
    [
      ['copy-sqlite', '--to', 'postgres://u:pw@h:5432'],
      '--to names no database (postgres://user@host:5432/database): "postgres://u:***@h:5432"',
    ],
    [['copy-sqlite', '--to', 'postgres://u:pw@[oops/db'], '--to is not a valid PostgreSQL URL'],
    [
      ['copy-sqlite', '--from', 'postgres://h/db', '--to', 'postgres://h/db2'],
      "--from must be the stopped server's SQLite file",
    ],
    [
      ['copy-sqlite', '--from', ':memory:', '--to', 'postgres://h/db'],
      '--from: a :memory: database holds nothing to copy',
    ],
    [
      ['copy-sqlite', '--from', 'file:', '--to', 'postgres://h/db'],
      '--from must name a SQLite file (file:<path>), got "file:"',
    ],
  ])('%j is a usage error (exit 2), naming the flag; nothing is copied', async (args, message) => {
    const { calls, err, exitCode } = await run(args, copied)
    expect(exitCode).toBe(2)
    expect(err).toContain(message)
    expect(err).not.toContain('pw@')
    expect(calls).toEqual([])
  })

  it('refusals and failures: what happened, the flag at fault, and the exit code', async () => {
    const inUse = await run(
      ['copy-sqlite', '--from', '/srv/r.db', '--to', 'postgres://h/db'],
      failing(new DatabaseInUseError('/srv/r.db', '/srv/r.db.lock')),
    )
    expect(inUse).toMatchObject({ exitCode: 1 })
    expect(inUse.err).toBe(
      'ratchet: copy-sqlite: --from: a Ratchet server is using /srv/r.db (its lock file /srv/r.db.lock is held). ' +
        'Stop it first (SIGTERM lets running attempts finish), then copy; nothing was copied\n',
    )
    const notEmpty = await run(
      ['copy-sqlite', '--to', 'postgres://h/db'],
      failing(
        new CopyRefusedError(
          'target-not-empty',
          'PostgreSQL database "db" on h is not empty: it holds events (1 rows)',
        ),
      ),
    )
    expect(notEmpty).toMatchObject({
      exitCode: 1,
      err: 'ratchet: copy-sqlite: --to: PostgreSQL database "db" on h is not empty: it holds events (1 rows); nothing was copied\n',
    })
    const missing = await run(
      ['copy-sqlite', '--from', 'nope.db', '--to', 'postgres://h/db'],
      failing(new CopyRefusedError('sqlite-missing', 'no SQLite database at /x/nope.db')),
    )
    expect(missing.err).toBe(
      'ratchet: copy-sqlite: --from: no SQLite database at /x/nope.db; nothing was copied\n',
    )
    const row = await run(
      ['copy-sqlite', '--to', 'postgres://h/db'],
      failing(
        new CopyRefusedError(
          'row-not-copyable',
          'events (id=x): id: "x" is not a lower-case UUID; nothing was committed',
        ),
      ),
    )
    expect(row).toMatchObject({ exitCode: 1 })
    expect(row.err).toBe(
      'ratchet: copy-sqlite: events (id=x): id: "x" is not a lower-case UUID; nothing was committed\n',
    )
    const unreachable = await run(
      ['copy-sqlite', '--to', 'postgres://h/db'],
      failing(
        new StorageUnavailableError(
          'cannot reach PostgreSQL database "db" on h (ECONNREFUSED); nothing was copied',
        ),
      ),
    )
    expect(unreachable).toMatchObject({
      exitCode: 3,
      err: 'ratchet: copy-sqlite: --to: cannot reach PostgreSQL database "db" on h (ECONNREFUSED); nothing was copied\n',
    })
    const noDatabase = await run(
      ['copy-sqlite', '--to', 'postgres://h:5433/db'],
      failing(Object.assign(new Error('database "db" does not exist'), { code: '3D000' })),
    )
    expect(noDatabase).toMatchObject({
      exitCode: 1,
      err: 'ratchet: copy-sqlite: --to: database "db" does not exist on h:5433: create it first (createdb, or CREATE DATABASE); nothing was copied\n',
    })
  })

  it('is listed in ratchet --help', async () => {
    const { out } = await run(['--help'], copied)
    expect(out).toMatch(/copy-sqlite \[options\]\s+copy a stopped server's SQLite database/)
  })
})
