/**
 * Where an in-process benchmark workload keeps its executions: a fresh SQLite file (the default)
 * or a fresh PostgreSQL database (`npm run bench` with BENCH_DATABASE_URL), with a way to check
 * its results in SQL afterwards. Each store is used once and removes itself on `close`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Storage } from '@ratchet/core'
import { openPostgresStorage, openSqliteStorage } from '@ratchet/storage'
import { createBenchDatabase } from './pg-database'

export interface BenchStore {
  storage: Storage
  dialect: 'sqlite' | 'postgresql'
  /** The first row of a read-only query (numbers as numbers). */
  get<Row extends object>(sql: string): Promise<Row>
  /** Closes the storage and deletes the file or database. */
  close(): Promise<void>
}

/** Opens a fresh store: SQLite in a temp folder, or PostgreSQL on the server of `postgresUrl`. */
export type OpenBenchStore = () => Promise<BenchStore>

export const sqliteStore: OpenBenchStore = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-bench-'))
  const storage = openSqliteStorage({ filename: join(dir, 'bench.db') })
  return Promise.resolve({
    storage,
    dialect: 'sqlite',
    get: <Row extends object>(sql: string) => Promise.resolve(storage.db.$client.prepare(sql).get() as Row),
    async close() {
      await storage.close()
      rmSync(dir, { recursive: true, force: true })
    },
  })
}

/** A fresh database `ratchet_bench_<random>` on the server of `adminUrl`, dropped on close. */
export function postgresStore(adminUrl: string, poolSize = 10): OpenBenchStore {
  return async () => {
    const database = await createBenchDatabase(adminUrl)
    const storage = await openPostgresStorage({
      url: database.url,
      poolSize,
      applicationName: 'ratchet-bench',
    })
    return {
      storage,
      dialect: 'postgresql',
      get: async <Row extends object>(sql: string) => (await database.query<Row>(sql))[0]!,
      async close() {
        await storage.close()
        await database.drop()
      },
    }
  }
}
