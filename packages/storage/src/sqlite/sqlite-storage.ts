import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import type {
  RunRef,
  ClaimRequest,
  EventRow,
  ExecutionRow,
  ChangesQuery,
  HistoryQuery,
  HistoryRow,
  ListQuery,
  StepsQuery,
  ThroughputQuery,
  NewExecution,
  PurgeOutcome,
  PurgeRequest,
  RecoverRequest,
  RunState,
  Settlement,
  SignalOutcome,
  StepWrite,
  StepWriteResult,
  TaskQueueRow,
  Storage,
  StorageCapabilities,
  WakeupOutcome,
} from '@ratchet/core'
import { SQLITE_MIGRATIONS_FOLDER } from '../migrations-folder'
import { prepareCancel, prepareCancelTree } from './cancel'
import { prepareClaim } from './claim'
import type { SqliteDb } from './database'
import { prepareEnqueue } from './enqueue'
import { listEvents, preparePublishEvent } from './events'
import { prepareAppendHistory } from './history'
import { prepareExtendLeases, prepareRecoverLeases } from './leases'
import { prepareChangesSince, prepareChangeCursor } from './changes'
import { prepareGet, prepareHistory } from './read'
import { prepareTaskStats, prepareThroughput } from './stats'
import { listSummaries, prepareSteps } from './summaries'
import { preparePurge, prepareReclaimSpace } from './purge'
import { prepareQueueStats } from './queue-stats'
import { prepareTaskQueues } from './task-queues'
import { prepareLoadRunState, prepareRecordSteps } from './run-state'
import { prepareRerun } from './rerun'
import { prepareSettle } from './settle'
import { prepareSignal } from './signal'
import { prepareHousekeep, prepareNextDueAt } from './timers'
import { prepareWake } from './wake'
import { prepareWakeup } from './wakeup'
import * as schema from './schema'

export interface SqliteStorageOptions {
  /** Database file. Its folder is created if missing. `:memory:` works for throwaway use. */
  filename: string
  /**
   * Folder of the SQLite migrations. Set it when the code is bundled.
   * @default the `migrations/sqlite` folder shipped with @ratchet/storage
   */
  migrationsFolder?: string
  /**
   * `normal`: with WAL, a committed transaction survives a process crash but may be lost on
   * power failure; `full`: fsync on every commit, survives power loss too. @default 'normal'
   */
  synchronous?: 'normal' | 'full'
  /** How long a statement waits for a lock held by another connection. @default 5000 */
  busyTimeoutMs?: number
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode and applies pending migrations.
 * Throws if the file cannot be opened or a migration fails; nothing is left half-migrated
 * (each migration runs in a transaction).
 */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  if (options.filename !== ':memory:') mkdirSync(dirname(resolve(options.filename)), { recursive: true })
  const client = new Database(options.filename)
  try {
    useIncrementalVacuum(client)
    client.pragma('journal_mode = WAL')
    client.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    client.pragma('foreign_keys = ON')
    client.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`)
    const db = drizzle({ client, schema })
    migrate(db, { migrationsFolder: options.migrationsFolder ?? SQLITE_MIGRATIONS_FOLDER })
    return new SqliteStorage(db)
  } catch (error) {
    client.close()
    throw error
  }
}

/**
 * Turns on `auto_vacuum = INCREMENTAL`, so that `reclaimSpace` (after retention purges) can
 * give free pages back to the file system. A new database takes it at once; an existing one
 * created without it is rewritten once by `VACUUM` (it needs as much free disk as the file,
 * and takes about a second per few hundred MB; later opens skip it).
 */
function useIncrementalVacuum(client: Database.Database): void {
  const INCREMENTAL = 2
  if (client.pragma('auto_vacuum', { simple: true }) === INCREMENTAL) return
  client.pragma('auto_vacuum = INCREMENTAL')
  if (client.pragma('auto_vacuum', { simple: true }) !== INCREMENTAL) client.exec('VACUUM')
}

/* eslint-disable @typescript-eslint/require-await --
   The port is async; better-sqlite3 is synchronous. `async` still matters: it turns a
   thrown SQLite error into a rejected promise, as callers of the port expect. */
/**
 * The SQLite adapter: one writer process, synchronous transactions (better-sqlite3), every
 * statement prepared once. Each port method delegates to the statement module named after it.
 */
export class SqliteStorage implements Storage {
  readonly capabilities: StorageCapabilities = { skipLocked: false, listenNotify: false, singleWriter: true }
  private readonly statements

  constructor(readonly db: SqliteDb) {
    const appendHistory = prepareAppendHistory(db)
    const wake = prepareWake(db, appendHistory)
    const enqueue = prepareEnqueue(db, appendHistory)
    const cancelTree = prepareCancelTree(db, appendHistory)
    this.statements = {
      enqueue,
      publishEvent: preparePublishEvent(db, enqueue),
      claim: prepareClaim(db, appendHistory),
      housekeep: prepareHousekeep(db, appendHistory, wake),
      settle: prepareSettle(db, appendHistory, wake, cancelTree),
      extendLeases: prepareExtendLeases(db),
      recoverLeases: prepareRecoverLeases(db, appendHistory, wake, cancelTree),
      cancel: prepareCancel(db, cancelTree, wake),
      rerun: prepareRerun(db, appendHistory),
      loadRunState: prepareLoadRunState(db),
      recordSteps: prepareRecordSteps(db, appendHistory),
      signal: prepareSignal(db, appendHistory, wake),
      wakeup: prepareWakeup(db, appendHistory, wake),
      get: prepareGet(db),
      history: prepareHistory(db),
      nextDueAt: prepareNextDueAt(db),
      steps: prepareSteps(db),
      taskStats: prepareTaskStats(db),
      throughput: prepareThroughput(db),
      changesSince: prepareChangesSince(db),
      changeCursor: prepareChangeCursor(db),
      purge: preparePurge(db),
      reclaimSpace: prepareReclaimSpace(db),
      queueStats: prepareQueueStats(db),
      taskQueues: prepareTaskQueues(db),
    }
  }

  async enqueue(rows: readonly NewExecution[], now: number) {
    return this.statements.enqueue(rows, now)
  }

  async claim(request: ClaimRequest) {
    return this.statements.claim(request)
  }

  async housekeep(now: number, limit: number) {
    return this.statements.housekeep(now, limit)
  }

  async settle(settlements: readonly Settlement[], now: number) {
    return this.statements.settle(settlements, now)
  }

  async extendLeases(owner: string, leases: readonly RunRef[], now: number, leaseMs: number) {
    return this.statements.extendLeases(owner, leases, now, leaseMs)
  }

  async recoverLeases(request: RecoverRequest) {
    return this.statements.recoverLeases(request)
  }

  async cancel(id: string, now: number, error: string, descendantError?: string) {
    return this.statements.cancel(id, now, error, descendantError)
  }

  async loadRunState(executionId: string): Promise<RunState> {
    return this.statements.loadRunState(executionId)
  }

  async wakeup(
    key: string,
    result: { value: string } | { error: string },
    now: number,
  ): Promise<WakeupOutcome> {
    return this.statements.wakeup(key, result, now)
  }

  async recordSteps(writes: readonly StepWrite[], now: number): Promise<StepWriteResult[]> {
    return this.statements.recordSteps(writes, now)
  }

  async signal(executionId: string, name: string, payload: string, now: number): Promise<SignalOutcome> {
    return this.statements.signal(executionId, name, payload, now)
  }

  async get(id: string): Promise<ExecutionRow | undefined> {
    return this.statements.get(id)
  }

  async list(query: ListQuery) {
    return listSummaries(this.db, query)
  }

  async publishEvent(event: EventRow, executions: readonly NewExecution[], now: number) {
    return this.statements.publishEvent(event, executions, now)
  }

  async listEvents(query: { type?: string; beforeId?: string; limit: number }): Promise<EventRow[]> {
    return listEvents(this.db, query)
  }

  async rerun(id: string, now: number) {
    return this.statements.rerun(id, now)
  }

  async history(id: string, options?: HistoryQuery): Promise<HistoryRow[]> {
    return this.statements.history(id, options)
  }

  async steps(id: string, query: StepsQuery) {
    return this.statements.steps(id, query)
  }

  async taskStats(now: number) {
    return this.statements.taskStats(now)
  }

  async throughput(query: ThroughputQuery) {
    return this.statements.throughput(query)
  }

  async changesSince(query: ChangesQuery) {
    return this.statements.changesSince(query)
  }

  async changeCursor() {
    return this.statements.changeCursor()
  }

  async purge(request: PurgeRequest): Promise<PurgeOutcome> {
    return this.statements.purge(request)
  }

  async reclaimSpace(maxPages: number) {
    return this.statements.reclaimSpace(maxPages)
  }

  async nextDueAt(taskIds: readonly string[]): Promise<number | null> {
    return this.statements.nextDueAt(taskIds)
  }

  async queueStats(now: number) {
    return this.statements.queueStats(now)
  }

  async setTaskPaused(taskId: string, paused: boolean, now: number): Promise<TaskQueueRow> {
    return this.statements.taskQueues.setPaused(taskId, paused, now)
  }

  async taskQueues(): Promise<TaskQueueRow[]> {
    return this.statements.taskQueues.all()
  }

  async close(): Promise<void> {
    if (this.db.$client.open) this.db.$client.close()
  }
}
