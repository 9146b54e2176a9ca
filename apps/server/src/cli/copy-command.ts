/**
 * `ratchet copy-sqlite`: moves a stopped server's SQLite database into an empty PostgreSQL
 * database (`copySqliteToPostgres` of @ratchet/storage), so its executions carry on on a server
 * started with `DATABASE_URL=postgres://…`. Like `start` and `migrate`, it works on the database
 * directly, not through a server.
 */
import { Option, type Command } from 'commander'
import type { CopyProgress, CopyReport, CopyStage, copySqliteToPostgres } from '@ratchet/storage'
import { redactDatabaseUrl } from '../database-url'
import { CommandExit } from './context'
import { EXIT } from './exit-codes'

export const DEFAULT_SQLITE_URL = 'file:./.data/ratchet.db'

export interface CopyCommandDeps {
  /** Where the summary goes. @default process.stdout */
  write?: (text: string) => void
  /** Where progress and errors go. @default process.stderr */
  writeError?: (text: string) => void
  /** The copy itself. @default copySqliteToPostgres of @ratchet/storage */
  copySqlite?: typeof copySqliteToPostgres
  /** Milliseconds between two progress lines on stderr. @default 1000 */
  progressEveryMs?: number
}

interface CopyFlags {
  from: string
  to: string
  json?: boolean
}

interface Target {
  url: string
  host: string
  /** What messages call it: its name and host (never the URL: it may hold a password). */
  label: string
}

/** A usage error of `copy-sqlite`: printed, then exit 2 (nothing was read or written). */
class UsageError extends Error {}

/** `--from`: `file:<path>`, `sqlite:<path>` or a bare path (as DATABASE_URL takes a SQLite file). */
function sqliteFile(value: string): string {
  if (/^postgres(ql)?:\/\//i.test(value))
    throw new UsageError(
      `--from must be the stopped server's SQLite file (file:<path> or a path), got a PostgreSQL URL; the PostgreSQL database goes in --to`,
    )
  const match = /^(?:file|sqlite):(?:\/\/)?(.*)$/i.exec(value)
  const filename = match ? match[1]! : value
  if (filename.trim() === '')
    throw new UsageError(`--from must name a SQLite file (file:<path>), got "${value}"`)
  if (filename === ':memory:')
    throw new UsageError('--from: a :memory: database holds nothing to copy; give the file the server used')
  return filename
}

/** `--to`: a `postgres://` URL naming a database. Its password never appears in a message. */
function postgresUrl(value: string): Target {
  const expected = 'postgres://user@host:5432/database'
  if (!/^postgres(ql)?:\/\//i.test(value))
    throw new UsageError(`--to must be a PostgreSQL URL (${expected}), got "${redactDatabaseUrl(value)}"`)
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new UsageError(`--to is not a valid PostgreSQL URL (${expected}): "${redactDatabaseUrl(value)}"`)
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
  if (database === '')
    throw new UsageError(`--to names no database (${expected}): "${redactDatabaseUrl(value)}"`)
  const host = parsed.host || 'localhost'
  return { url: value, host, label: `PostgreSQL database "${database}" on ${host}` }
}

const STAGES: Record<CopyStage, string> = {
  indexing: 'every row is in; building the indexes',
  verifying: 'counting the rows in both databases',
  committing: 'committing',
  analyzing: 'committed; updating the planner statistics (ANALYZE)',
}

const count = (n: number) => n.toLocaleString('en-US')

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`
}

function summary(report: CopyReport, from: string, to: string): string {
  const width = Math.max(...report.tables.map((t) => t.table.length))
  const digits = Math.max(...report.tables.map((t) => count(t.rows).length))
  const lines = [
    `ratchet: copied ${from} into ${to} in ${seconds(report.ms)}`,
    ...report.tables.map((t) => `  ${t.table.padEnd(width)}  ${count(t.rows).padStart(digits)}`),
  ]
  const { queued, waiting, running } = report.unfinished
  if (queued + waiting + running > 0) {
    lines.push(
      `unfinished executions: ${count(queued)} queued, ${count(waiting)} waiting, ${count(running)} running; ` +
        'a server on PostgreSQL carries them on',
    )
  }
  if (running > 0 && report.lastLeaseExpiresAt !== null) {
    lines.push(
      `  the running ones lost their server (it was killed, not stopped): a server on PostgreSQL recovers each ` +
        `once its lease has expired (the last at ${new Date(report.lastLeaseExpiresAt).toISOString()}), and runs it again`,
    )
  }
  lines.push(
    'next: start the server with DATABASE_URL set to the --to URL; keep the SQLite file until you have checked',
  )
  return `${lines.join('\n')}\n`
}

/** The message and exit code of a failed copy (`--from`/`--to` named where one is at fault). */
async function failure(
  error: unknown,
  from: string,
  to: Target,
): Promise<{ text: string; exitCode: number }> {
  const { CopyRefusedError, DatabaseInUseError } = await import('@ratchet/storage')
  const { StorageUnavailableError } = await import('@ratchet/core')
  const say = (text: string, exitCode: number = EXIT.SERVER_ERROR) => ({
    text: `ratchet: copy-sqlite: ${text}\n`,
    exitCode,
  })
  if (error instanceof DatabaseInUseError)
    return say(
      `--from: a Ratchet server is using ${error.filename} (its lock file ${error.lockFile} is held). ` +
        'Stop it first (SIGTERM lets running attempts finish), then copy; nothing was copied',
    )
  if (error instanceof CopyRefusedError) {
    const flag = error.reason.startsWith('sqlite-')
      ? '--from: '
      : error.reason.startsWith('target-')
        ? '--to: '
        : ''
    const tail =
      error.reason.startsWith('sqlite-') || error.reason.startsWith('target-') ? '; nothing was copied' : ''
    return say(`${flag}${error.message}${tail}`)
  }
  if (error instanceof StorageUnavailableError) return say(`--to: ${error.message}`, EXIT.UNAVAILABLE)
  const code = (error as { code?: unknown }).code
  const message = error instanceof Error ? error.message : String(error)
  if (code === '3D000')
    return say(
      `--to: ${message} on ${to.host}: create it first (createdb, or CREATE DATABASE); nothing was copied`,
    )
  if (code === '42501')
    return say(
      `--to: ${message}: run copy-sqlite as the role that owns the Ratchet tables of ${to.label} (the one that applied their migrations); nothing was copied`,
    )
  if (code === '28P01' || code === '28000')
    return say(
      `--to: ${message} (${to.label}; give the password in the URL or in PGPASSWORD); nothing was copied`,
    )
  return say(`${message} (copying ${from} into ${to.label})`)
}

/**
 * Adds `ratchet copy-sqlite --from file:<path> --to postgres://…`. Exit codes: 0 copied; 1
 * refused or failed, nothing copied (a server holds the file, the target is not empty, a value
 * PostgreSQL cannot store, a PostgreSQL error); 2 a usage error (a bad or missing flag; nothing
 * read or written); 3 PostgreSQL unreachable (nothing copied, or, lost during COMMIT, say so).
 */
export function addCopyCommand(program: Command, deps: CopyCommandDeps = {}): void {
  program
    .command('copy-sqlite')
    .description(
      "copy a stopped server's SQLite database (executions, history, steps, signals, events, keys) into an empty PostgreSQL database",
    )
    .addOption(
      new Option(
        '--from <url>',
        `the stopped server's SQLite file, file:<path> or a path (default: ${DEFAULT_SQLITE_URL})`,
      ),
    )
    .addOption(
      new Option(
        '--to <url>',
        'the empty PostgreSQL database, postgres://user@host:5432/database (a password is better in PGPASSWORD: other users of the machine can read a command line)',
      ).makeOptionMandatory(),
    )
    .addOption(new Option('--json', 'print the summary as JSON for scripts'))
    .addHelpText(
      'after',
      `
Copies every execution (with its idempotency key), its history, step records (with wake-up
keys), signals and the events, with their ids, seqs and values as they are, in ONE
PostgreSQL transaction: all of it or nothing, the rows counted in both databases before it
commits. It refuses while a server uses the SQLite file (it holds the server's lock for the
copy: stop the server first) and refuses a PostgreSQL database that holds any Ratchet row
(its migrations are applied first, so a new empty database is all it needs). The SQLite
file is only read. Then start the server with DATABASE_URL=postgres://...: queued, sleeping
and waiting executions carry on there; those that were running on a server that was killed
are recovered once their leases expire.

Exit codes: 0 copied; 1 refused or failed, nothing copied; 2 usage error; 3 PostgreSQL
unreachable. Progress of a long copy goes to stderr.

Example:
  $ PGPASSWORD=... npx ratchet copy-sqlite --from file:./.data/ratchet.db --to postgres://ratchet@db:5432/ratchet`,
    )
    .action(async (flags: CopyFlags) => {
      const write = deps.write ?? ((text: string) => void process.stdout.write(text))
      const writeError = deps.writeError ?? ((text: string) => void process.stderr.write(text))
      let filename: string
      let target: Target
      try {
        filename = sqliteFile(flags.from ?? DEFAULT_SQLITE_URL)
        target = postgresUrl(flags.to)
      } catch (error) {
        if (!(error instanceof UsageError)) throw error
        writeError(`ratchet: copy-sqlite: ${error.message}\n(see ratchet copy-sqlite --help)\n`)
        throw new CommandExit(EXIT.USAGE)
      }
      const copy = deps.copySqlite ?? (await import('@ratchet/storage')).copySqliteToPostgres
      const every = deps.progressEveryMs ?? 1000
      const started = Date.now()
      let lastProgress = started
      // Quiet for a copy that ends within a second; then a line a second, and each later stage.
      const onProgress = (p: CopyProgress) => {
        const now = Date.now()
        if (now - lastProgress < every) return
        lastProgress = now
        const percent = p.total > 0 ? ` (${Math.floor((p.copied / p.total) * 100)}%)` : ''
        writeError(
          `ratchet: copy-sqlite: ${p.table}: ${count(p.copied)} of ${count(p.total)} rows${percent}\n`,
        )
      }
      const onStage = (stage: CopyStage) => {
        if (Date.now() - started >= every) writeError(`ratchet: copy-sqlite: ${STAGES[stage]}\n`)
      }
      let report: CopyReport
      try {
        report = await copy({ sqliteFilename: filename, postgresUrl: target.url, onProgress, onStage })
      } catch (error) {
        const { text, exitCode } = await failure(error, filename, target)
        writeError(text)
        throw new CommandExit(exitCode)
      }
      if (flags.json) {
        write(
          `${JSON.stringify({
            from: filename,
            to: redactDatabaseUrl(target.url),
            tables: Object.fromEntries(report.tables.map((t) => [t.table, t.rows])),
            unfinished: report.unfinished,
            lastLeaseExpiresAt: report.lastLeaseExpiresAt,
            ms: report.ms,
          })}\n`,
        )
      } else {
        write(summary(report, filename, target.label))
      }
    })
}
