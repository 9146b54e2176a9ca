import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import type pg from 'pg'

/**
 * The key of the session advisory lock held while migrating ("ratchet" in ASCII, as an int8):
 * replicas that start together take turns, so the first applies the migrations and the others
 * find nothing left to do.
 */
export const MIGRATION_LOCK_KEY = 0x7261746368657400n

/**
 * Applies pending migrations on one connection of `pool`, under `pg_advisory_lock`. Each
 * migration file runs in one transaction (drizzle's migrator), so a failure leaves the
 * database at the last migration that succeeded. Failure semantics: throws what failed (the
 * lock is released with the connection); an unreachable database surfaces as the driver's
 * error, for the caller to map.
 */
export async function migratePostgres(pool: pg.Pool, migrationsFolder: string): Promise<void> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()])
    try {
      await migrate(drizzle({ client }), { migrationsFolder })
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()])
    }
  } catch (error) {
    broken = error as Error
    throw error
  } finally {
    // On failure the connection is closed, which also drops the session lock if unlocking failed.
    client.release(broken)
  }
}
