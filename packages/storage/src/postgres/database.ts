import pg from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { StorageUnavailableError } from '@ratchet/core'
import { isUnavailable, isRetryableConflict } from './errors'
import { CHANGE_CHANNEL, WAKE_CHANNEL } from './notify-channels'
import * as schema from './schema'

/**
 * Where lease times come from. `database`: `lease_expires_at` is written and judged with the
 * database's clock, so clock skew between replicas cannot make one recover a live lease;
 * `caller`: with the `now` passed in (tests that move a ManualClock).
 */
export type LeaseClock = 'database' | 'caller'

/** A statement with one home: prepared once per connection under its `name`. */
export interface Statement {
  readonly name: string
  readonly text: string
}

/** Declares a named statement (the name must be unique in the adapter). */
export function statement(name: string, text: string): Statement {
  return { name: `ratchet_${name}`, text }
}

/**
 * The database's clock in epoch ms, as lease times use it. `clock_timestamp()`, not `now()`:
 * a transaction may have waited on a lock since it began.
 */
export const DATABASE_NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint'

/** The statements of one transaction, and the notices it sends when it commits. */
export interface Tx {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    statement: Statement | string,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>
  /** Sends `ratchet_wake` at commit: something became claimable now. */
  notifyWake(): void
  /** Sends `ratchet_change` at commit: a status history row was appended. */
  notifyChange(): void
  /**
   * Runs `fn` inside a savepoint: when it throws, only its writes are undone and the error is
   * rethrown (the transaction goes on).
   */
  savepoint<T>(fn: () => Promise<T>): Promise<T>
}

/** Retries of a transaction that hit a serialization failure or a deadlock (40001, 40P01). */
const MAX_TRIES = 5

/** Options of the pool, fixed once here. */
export interface PoolSettings {
  url: string
  poolSize: number
  applicationName: string
  /** How long a checkout waits for a free or new connection before the database counts as unreachable. */
  connectTimeoutMs: number
}

/**
 * int8 (OID 20) columns and `count(*)` parse to JS numbers: every int8 the adapter stores is
 * an epoch-ms time, a seq or a count, far below 2^53. Set on this pool only, never on the
 * global `pg.types`, so other pg users in the process are unaffected.
 */
const INT8_OID = 20
const parseInt8 = (value: string) => Number(value)
const builtinParser = (oid: number, format?: 'text' | 'binary'): unknown =>
  pg.types.getTypeParser(oid, format ?? 'text') as unknown
export const typeParsers = {
  getTypeParser: (oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : builtinParser(oid, format),
}

/**
 * Session settings of every pooled connection.
 * - `jit=off`: the claim's plan is cheap to run (under a millisecond) but its generic plan's
 *   cost estimate passes `jit_above_cost`, and compiling it took 300-400 ms; no statement of
 *   the adapter runs long enough to gain from JIT.
 * - `plan_cache_mode=force_generic_plan`: the adapter's statements are prepared once per
 *   connection, and each is written to read O(due) rows under a generic plan (the query-plan
 *   test explains every one under both plans). Left to choose, PostgreSQL kept planning the
 *   claim anew on every call (its custom plan looked cheaper), 1-2 ms of planning for 0.1 ms
 *   of work: the claim of one row went from 2.9 to 1.2 ms p50, an enqueue from 1.2 to 0.9 ms.
 */
export const SESSION_OPTIONS = '-c jit=off -c plan_cache_mode=force_generic_plan'

/** A pool with the adapter's settings: int8 as numbers, idle-connection errors absorbed, no JIT. */
export function createPool(settings: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.poolSize,
    application_name: settings.applicationName,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    types: typeParsers,
    options: SESSION_OPTIONS,
  })
  // An idle connection whose backend went away (a restart, pg_terminate_backend) emits
  // `error` on the pool; unhandled, it would take the process down. The pool drops that
  // connection by itself; the next checkout opens a new one or reports the outage.
  pool.on('error', () => {})
  // A checked-out connection has only the listener of whoever holds it (pool.query, a
  // transaction), if any. Every connection keeps one of its own, so that no moment in its
  // hand-overs turns a terminated backend into an uncaught 'error' event (one was seen in the
  // three-replica outage test, cause not pinned down). Nothing is lost by it: the statements
  // on that connection fail with the error, and the pool drops it when it is released.
  // Each connection's server process id (the backend key data, set once connected) is recorded
  // too: a notice sent by one of them is this process's own (see `backendsOf`).
  const backends = new Set<number>()
  ownBackends.set(pool, backends)
  const pid = (client: pg.PoolClient) => (client as unknown as { processID: number }).processID
  pool.on('connect', (client) => {
    client.on('error', () => {})
    backends.add(pid(client))
  })
  pool.on('remove', (client) => backends.delete(pid(client)))
  return pool
}

const ownBackends = new WeakMap<pg.Pool, ReadonlySet<number>>()

/**
 * The server process ids of a pool's connections (made by `createPool`): a notice (NOTIFY)
 * sent by one of them is this process's own. Behind a connection pooler (PgBouncer) the ids a
 * client sees are the pooler's, not the server's: none then matches, and the process hears its
 * own wake notices as before (a claim that finds nothing), which is harmless.
 */
export function backendsOf(pool: pg.Pool): ReadonlySet<number> {
  return ownBackends.get(pool) ?? new Set()
}

/**
 * The adapter's handle on its database: one pool, and the two ways to run statements (one
 * autocommitted statement, or a transaction), both retrying serialization failures and
 * deadlocks and both turning "database unreachable" into `StorageUnavailableError`.
 */
export class PostgresDatabase {
  /** Drizzle over the same pool, for statements the query builder writes well. */
  readonly db: NodePgDatabase<typeof schema> & { $client: pg.Pool }

  constructor(
    readonly pool: pg.Pool,
    readonly leaseClock: LeaseClock,
  ) {
    this.db = drizzle({ client: pool, schema })
  }

  /**
   * The `now` a lease statement binds: the caller's in `caller` mode, else `null`, which the
   * statements read as "the database's clock" (`coalesce($n, DATABASE_NOW)`).
   */
  leaseNow(now: number): number | null {
    return this.leaseClock === 'caller' ? now : null
  }

  /**
   * Runs one statement on its own (autocommitted: atomic by itself). Failure semantics: a
   * serialization failure or deadlock is retried (up to 5 tries, jittered); an unreachable
   * database throws `StorageUnavailableError` (the statement took effect entirely or not at
   * all); any other error is rethrown as is.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    statement: Statement | string,
    values: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    return this.retrying(() => this.pool.query<R>(toConfig(statement, values)))
  }

  /**
   * Runs any database work (e.g. a drizzle query) with the same retry and error mapping as
   * `query`. `work` must be safe to run again from the start.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    return this.retrying(work)
  }

  /**
   * Runs `fn` in one READ COMMITTED transaction on one connection, then sends the notices it
   * asked for and commits. Failure semantics: whatever `fn` throws rolls everything back and
   * is rethrown; a serialization failure or deadlock reruns `fn` from the start in a new
   * transaction (up to 5 tries, jittered), so `fn` must keep no state across tries; an
   * unreachable database throws `StorageUnavailableError` and nothing was written (or, lost at
   * COMMIT, all of it: a transaction is never half-applied).
   */
  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.retrying(async () => {
      const client = await this.pool.connect()
      let broken: Error | undefined
      // The pool listens for errors only on idle clients: a backend terminated while this one is
      // checked out (between two statements) would be an uncaught 'error' event. Noted here, the
      // next statement fails with it, and the connection is dropped below.
      const onError = (error: Error) => void (broken ??= error)
      client.on('error', onError)
      try {
        await client.query('BEGIN')
        let wake = false
        let change = false
        let savepoints = 0
        const tx: Tx = {
          query: (statement, values = []) => client.query(toConfig(statement, values)),
          notifyWake: () => void (wake = true),
          notifyChange: () => void (change = true),
          savepoint: async (inner) => {
            const name = `ratchet_sp_${++savepoints}`
            await client.query(`SAVEPOINT ${name}`)
            try {
              const result = await inner()
              await client.query(`RELEASE SAVEPOINT ${name}`)
              return result
            } catch (error) {
              await client.query(`ROLLBACK TO SAVEPOINT ${name}`)
              throw error
            }
          },
        }
        let result: T
        try {
          result = await fn(tx)
        } catch (error) {
          // A connection that cannot even roll back is not handed to the next caller.
          await client.query('ROLLBACK').catch((rollbackFailed: Error) => void (broken = rollbackFailed))
          throw error
        }
        // NOTIFY is delivered at commit, and only if it commits; one round trip with COMMIT.
        await client.query(
          `${wake ? `NOTIFY ${WAKE_CHANNEL}; ` : ''}${change ? `NOTIFY ${CHANGE_CHANNEL}; ` : ''}COMMIT`,
        )
        return result
      } catch (error) {
        if (isUnavailable(error)) broken ??= error as Error
        throw error
      } finally {
        client.removeListener('error', onError)
        // A connection that failed is dropped, not handed to the next caller.
        client.release(broken)
      }
    })
  }

  private async retrying<T>(work: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await work()
      } catch (error) {
        if (isUnavailable(error)) throw new StorageUnavailableError(undefined, { cause: error })
        if (!isRetryableConflict(error) || tries >= MAX_TRIES) throw error
        // Full jitter over 2, 4, 8, 16 ms: contenders rarely collide twice.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** tries))
      }
    }
  }
}

function toConfig(statement: Statement | string, values: readonly unknown[]): pg.QueryConfig {
  return typeof statement === 'string'
    ? { text: statement, values: values as unknown[] }
    : { name: statement.name, text: statement.text, values: values as unknown[] }
}
