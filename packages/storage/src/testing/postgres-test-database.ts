import { randomBytes } from 'node:crypto'
import { getTableName, is } from 'drizzle-orm'
import { PgTable } from 'drizzle-orm/pg-core'
import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import * as postgresSchema from '../postgres/schema'

/**
 * A PostgreSQL database per test FILE, for the PostgreSQL adapter's tests:
 *
 * ```ts
 * const pg = await usePostgresTestDatabase() // top level: probes the server (prints the skip line)
 * describe.skipIf(!pg.available)('…', () => {
 *   beforeEach(() => pg.reset())                  // empty Ratchet tables, identities back to 1
 *   it('…', async () => { const storage = await openPostgresStorage({ url: pg.url }) … })
 * })
 * ```
 *
 * `beforeAll` creates `ratchet_t_<random>` on the server of `RATCHET_TEST_PG_URL` (default
 * {@link DEFAULT_TEST_PG_URL}); `afterAll` drops it when every test of the file passed, and keeps
 * it, printing its name, when one failed (the evidence). When the server cannot be reached the
 * tests are skipped with ONE line saying so (`PostgreSQL tests skipped: …`); `.ci/run` makes
 * sure it is reachable, so CI always runs them.
 */

/** The server the tests use when `RATCHET_TEST_PG_URL` is not set (trust auth, as in dev and CI). */
export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

/** `RATCHET_TEST_PG_URL`, or {@link DEFAULT_TEST_PG_URL}: a database to connect to on the test server. */
export function testPostgresUrl(): string {
  const fromEnv = process.env.RATCHET_TEST_PG_URL?.trim()
  return fromEnv ? fromEnv : DEFAULT_TEST_PG_URL
}

/** How long connecting may take before the server counts as unreachable. */
const CONNECT_TIMEOUT_MS = 3_000
/** How long `reset` waits for a table lock (a leaked transaction of an earlier test holds one). */
const LOCK_TIMEOUT_MS = 5_000

/** Every table of the PostgreSQL schema (what `reset` empties), from the schema module itself. */
export const RATCHET_TABLES: readonly string[] = (Object.values(postgresSchema) as unknown[])
  .filter((value): value is PgTable => is(value, PgTable))
  .map((table) => getTableName(table))
  .sort()

export type PostgresProbe = { reachable: true } | { reachable: false; error: string }

/** Connects once to `url` and runs `SELECT 1`: whether the server answers, and if not why. */
export async function probePostgres(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<PostgresProbe> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs })
  // An error after connecting (the server going away) must not crash the process.
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return { reachable: true }
  } catch (error) {
    return { reachable: false, error: describeError(error) }
  } finally {
    await client.end().catch(() => {})
  }
}

/** The one line printed when the server cannot be reached. */
export function skipLine(url: string, error: string): string {
  return `PostgreSQL tests skipped: ${redact(url)} unreachable (${error}); start it or set RATCHET_TEST_PG_URL`
}

/** `url` with its password masked, for printing. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password === '') return url
    parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}

/** A readable cause: `connect ECONNREFUSED 127.0.0.1:1`, `password authentication failed …`. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0])
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    if (error.message) return error.message
    if (typeof code === 'string') return code
    return error.name
  }
  return String(error)
}

/** int8 (bigint, count(*)) as JS numbers, for this pool only (the global pg.types stay untouched). */
const INT8_OID = 20
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? Number
      : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
}

/**
 * One test database: created by {@link createPostgresTestDatabase}, ended by `finish`. Most test
 * files use {@link usePostgresTestDatabase}, which calls both from vitest hooks.
 */
export class PostgresTestDatabase {
  private readonly pool: pg.Pool

  private constructor(
    /** `ratchet_t_<random>`. */
    readonly name: string,
    /** Connection URL of this database (the admin URL with its database name replaced). */
    readonly url: string,
    private readonly adminUrl: string,
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 2,
      types,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      options: `-c lock_timeout=${LOCK_TIMEOUT_MS}`,
    })
    this.pool.on('error', () => {})
  }

  /** Creates a new, empty database on the server of `adminUrl`. */
  static async create(adminUrl: string): Promise<PostgresTestDatabase> {
    const name = `ratchet_t_${randomBytes(6).toString('hex')}`
    await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`))
    const url = new URL(adminUrl)
    url.pathname = `/${name}`
    return new PostgresTestDatabase(name, url.toString(), adminUrl)
  }

  /**
   * Empties every Ratchet table that exists (one `TRUNCATE … RESTART IDENTITY`, so seqs start at 1
   * again), for a fresh start between tests; the migrations stay applied. Close the previous test's
   * storage first: a transaction it left open would hold the tables (the call then fails after 5 s).
   */
  async reset(): Promise<void> {
    const existing = await this.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c
        WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)`,
      [RATCHET_TABLES],
    )
    if (existing.length === 0) return
    const tables = existing.map((t) => pg.escapeIdentifier(t.name)).join(', ')
    try {
      await this.pool.query(`TRUNCATE ${tables} RESTART IDENTITY`)
    } catch (error) {
      throw new Error(
        `reset of ${this.name}: ${describeError(error)} (does an earlier test's storage still hold a transaction open?)`,
        { cause: error },
      )
    }
  }

  /** Runs one statement on this database (int8 read as numbers); its rows. */
  async query<Row extends object = Record<string, unknown>>(
    text: string,
    params: readonly unknown[] = [],
  ): Promise<Row[]> {
    return (await this.pool.query<Row>(text, params as unknown[])).rows
  }

  /**
   * Closes this harness's connections, then drops the database (`WITH (FORCE)`: connections a
   * test left open are ended) when `keep` is false; when it is true leaves it, printing its name.
   */
  async finish({ keep }: { keep: boolean }): Promise<void> {
    await this.pool.end()
    if (keep) {
      console.warn(
        `kept PostgreSQL test database ${this.name} (a test failed): psql ${JSON.stringify(redact(this.url))}`,
      )
      return
    }
    await withAdmin(this.adminUrl, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(this.name)} WITH (FORCE)`),
    )
  }
}

/** {@link PostgresTestDatabase.create} on `adminUrl` (default {@link testPostgresUrl}). */
export function createPostgresTestDatabase(adminUrl = testPostgresUrl()): Promise<PostgresTestDatabase> {
  return PostgresTestDatabase.create(adminUrl)
}

async function withAdmin<T>(adminUrl: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS })
  client.on('error', () => {})
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** What a test file gets from {@link usePostgresTestDatabase}. */
export interface PostgresTestFile {
  /** False when the server was unreachable: skip the file's tests (the reason was printed once). */
  readonly available: boolean
  /** Why the tests are skipped (the printed line); `null` when available. */
  readonly skipReason: string | null
  /** The test database's name; readable from `beforeAll` on (after this file's own hook). */
  readonly name: string
  /** The test database's URL; readable from `beforeAll` on (after this file's own hook). */
  readonly url: string
  /** See {@link PostgresTestDatabase.reset}. */
  reset(): Promise<void>
  /** See {@link PostgresTestDatabase.query}. */
  query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<Row[]>
}

/**
 * Call at the top level of a test file (`await`): probes the server now, so the file can
 * `describe.skipIf(!pg.available)`; when it is reachable registers a `beforeAll` that creates the
 * file's database and an `afterAll` that drops it if every test passed (else keeps it and prints
 * its name). When it is not, prints {@link skipLine} once and registers nothing.
 */
export async function usePostgresTestDatabase(
  options: { adminUrl?: string } = {},
): Promise<PostgresTestFile> {
  const adminUrl = options.adminUrl ?? testPostgresUrl()
  const probe = await probePostgres(adminUrl)
  let database: PostgresTestDatabase | undefined
  const current = (): PostgresTestDatabase => {
    if (database) return database
    throw new Error(
      probe.reachable
        ? 'the PostgreSQL test database is created in beforeAll: use it from a hook or a test'
        : 'PostgreSQL is unreachable: these tests should be skipped (describe.skipIf(!pg.available))',
    )
  }
  const skipReason = probe.reachable ? null : skipLine(adminUrl, probe.error)
  if (skipReason !== null) {
    console.warn(skipReason)
  } else {
    beforeAll(async () => {
      database = await PostgresTestDatabase.create(adminUrl)
    })
    // vitest hands the file to afterAll as its second argument; the first must be a pattern.
    // eslint-disable-next-line no-empty-pattern
    afterAll(async ({}, file) => {
      await database?.finish({ keep: anyFailed(file) })
      database = undefined
    })
  }
  return {
    available: probe.reachable,
    skipReason,
    get name() {
      return current().name
    },
    get url() {
      return current().url
    },
    reset: () => current().reset(),
    query: (text, params) => current().query(text, params),
  }
}

/** A task tree as vitest reports it (a file, a suite, a test), as far as failures go. */
export interface TaskTree {
  readonly result?: { readonly state?: string }
  readonly tasks?: readonly TaskTree[]
}

/** Whether the task or anything below it failed (a test, or a hook of a suite). */
export function anyFailed(task: TaskTree): boolean {
  return task.result?.state === 'fail' || (task.tasks ?? []).some(anyFailed)
}
