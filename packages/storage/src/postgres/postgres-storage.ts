import {
  StorageUnavailableError,
  type CancelOutcome,
  type ChangesQuery,
  type EnqueueOutcome,
  type EventRow,
  type ExecutionRow,
  type HistoryQuery,
  type HistoryRow,
  type ListQuery,
  type NewExecution,
  type PurgeOutcome,
  type PurgeRequest,
  type RecoverRequest,
  type RecoveredExecution,
  type RerunOutcome,
  type RunRef,
  type RunState,
  type Settlement,
  type SettleOutcome,
  type SignalOutcome,
  type StepWrite,
  type StepWriteResult,
  type TaskQueueRow,
  type StepsQuery,
  type Storage,
  type StorageCapabilities,
  type HousekeepOutcome,
  type ClaimOutcome,
  type ThroughputQuery,
  type WakeupOutcome,
  type ClaimRequest,
} from '@ratchet/core'
import { POSTGRES_MIGRATIONS_FOLDER } from '../migrations-folder'
import { changeCursor, changesSince } from './changes'
import { prepareClaim } from './claim'
import { getExecution } from './get'
import { cancel } from './cancel'
import { housekeep } from './housekeep'
import { extendLeases, recoverLeases } from './leases'
import { nextDueAt } from './next-due-at'
import { PostgresNotifications } from './notifications'
import { recordSteps } from './record-steps'
import { rerun } from './rerun'
import { loadRunState } from './run-state'
import { settle } from './settle'
import { signal } from './signal'
import { wakeup } from './wakeup'
import { backendsOf, createPool, PostgresDatabase, type LeaseClock } from './database'
import { enqueue } from './enqueue'
import { isUnavailable } from './errors'
import { listEvents, publishEvent } from './events'
import { readHistory } from './history'
import { listSummaries } from './list'
import { migratePostgres } from './migrate'
import { purge, reclaimSpace } from './purge'
import { queueStats } from './queue-stats'
import { setTaskPaused, taskQueues } from './task-queues'
import { taskStats, throughput } from './stats'
import { readSteps } from './steps'

export interface PostgresStorageOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string
  /** Connections in the pool (claims, settlements, reads share them). @default 10 */
  poolSize?: number
  /**
   * Folder of the PostgreSQL migrations. Set it when the code is bundled.
   * @default the `migrations/postgres` folder shipped with @ratchet/storage
   */
  migrationsFolder?: string
  /**
   * Whose clock writes and judges leases: `database` (the server's clock, so clock skew
   * between replicas cannot make one recover another's live lease) or `caller` (the `now`
   * passed in; for tests that move time). @default 'database'
   */
  leaseClock?: LeaseClock
  /** Shown in `pg_stat_activity.application_name`. @default 'ratchet' */
  applicationName?: string
  /**
   * How long a statement waits for a connection (all busy, or the server not answering)
   * before it fails with `StorageUnavailableError`. @default 10000
   */
  connectTimeoutMs?: number
}

/**
 * Opens the PostgreSQL adapter: a pool of `poolSize` connections, then the pending migrations
 * applied under an advisory lock (several replicas starting at once migrate once). Failure
 * semantics: an unreachable database throws `StorageUnavailableError`; a failed migration
 * throws its error; either way the pool is closed.
 */
export async function openPostgresStorage(options: PostgresStorageOptions): Promise<PostgresStorage> {
  const applicationName = options.applicationName ?? 'ratchet'
  const pool = createPool({
    url: options.url,
    poolSize: options.poolSize ?? 10,
    applicationName,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
  })
  try {
    await migratePostgres(pool, options.migrationsFolder ?? POSTGRES_MIGRATIONS_FOLDER)
  } catch (error) {
    await pool.end().catch(() => {})
    throw isUnavailable(error) ? new StorageUnavailableError(undefined, { cause: error }) : error
  }
  return new PostgresStorage(new PostgresDatabase(pool, options.leaseClock ?? 'database'), {
    url: options.url,
    applicationName,
  })
}

/**
 * The PostgreSQL adapter: many replicas on one database, READ COMMITTED transactions that lock
 * the rows they read, `FOR UPDATE SKIP LOCKED` claims, LISTEN/NOTIFY wake-ups. Each port method
 * delegates to the statement module named after it.
 */
export class PostgresStorage implements Storage {
  readonly capabilities: StorageCapabilities = { skipLocked: true, listenNotify: true, singleWriter: false }

  constructor(
    readonly database: PostgresDatabase,
    connection: { url: string; applicationName: string },
  ) {
    this.claimBatch = prepareClaim(database)
    // Wake notices of this pool's own writes are not heard: the engine that made them woke itself.
    const own = backendsOf(database.pool)
    this.notifications = new PostgresNotifications(connection, (pid) => own.has(pid))
  }

  /** Cross-process notices (LISTEN on a dedicated connection, opened on the first subscription). */
  readonly notifications: PostgresNotifications

  private readonly claimBatch: ReturnType<typeof prepareClaim>

  async enqueue(rows: readonly NewExecution[], now: number): Promise<EnqueueOutcome[]> {
    return enqueue(this.database, rows, now)
  }

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    return this.claimBatch(request)
  }

  async housekeep(now: number, limit: number): Promise<HousekeepOutcome> {
    return housekeep(this.database, now, limit)
  }

  async nextDueAt(taskIds: readonly string[]): Promise<number | null> {
    return nextDueAt(this.database, taskIds)
  }

  async settle(settlements: readonly Settlement[], now: number): Promise<SettleOutcome> {
    return settle(this.database, settlements, now)
  }

  async extendLeases(
    owner: string,
    leases: readonly RunRef[],
    now: number,
    leaseMs: number,
  ): Promise<RunRef[]> {
    return extendLeases(this.database, owner, leases, now, leaseMs)
  }

  async recoverLeases(request: RecoverRequest): Promise<RecoveredExecution[]> {
    return recoverLeases(this.database, request)
  }

  async cancel(
    id: string,
    now: number,
    error: string,
    descendantError?: string,
  ): Promise<CancelOutcome | undefined> {
    return cancel(this.database, id, now, error, descendantError)
  }

  async rerun(id: string, now: number): Promise<RerunOutcome | undefined> {
    return rerun(this.database, id, now)
  }

  async loadRunState(executionId: string): Promise<RunState> {
    return loadRunState(this.database, executionId)
  }

  async recordSteps(writes: readonly StepWrite[], now: number): Promise<StepWriteResult[]> {
    return recordSteps(this.database, writes, now)
  }

  async wakeup(
    key: string,
    result: { value: string } | { error: string },
    now: number,
  ): Promise<WakeupOutcome> {
    return wakeup(this.database, key, result, now)
  }

  async signal(executionId: string, name: string, payload: string, now: number): Promise<SignalOutcome> {
    return signal(this.database, executionId, name, payload, now)
  }

  async get(id: string): Promise<ExecutionRow | undefined> {
    return getExecution(this.database, id)
  }

  // The read side (i12-pgr).

  async publishEvent(event: EventRow, executions: readonly NewExecution[], now: number) {
    return publishEvent(this.database, event, executions, now)
  }

  async listEvents(query: { type?: string; beforeId?: string; limit: number }) {
    return listEvents(this.database, query)
  }

  async list(query: ListQuery) {
    return listSummaries(this.database, query)
  }

  async history(id: string, options?: HistoryQuery): Promise<HistoryRow[]> {
    return readHistory(this.database, id, options)
  }

  async steps(id: string, query: StepsQuery) {
    return readSteps(this.database, id, query)
  }

  async taskStats(now: number) {
    return taskStats(this.database, now)
  }

  async throughput(query: ThroughputQuery) {
    return throughput(this.database, query)
  }

  async changesSince(query: ChangesQuery) {
    return changesSince(this.database, query)
  }

  async changeCursor() {
    return changeCursor(this.database)
  }

  async purge(request: PurgeRequest): Promise<PurgeOutcome> {
    return purge(this.database, request)
  }

  async reclaimSpace(maxPages: number) {
    return reclaimSpace(this.database, maxPages)
  }

  async queueStats(now: number) {
    return queueStats(this.database, now)
  }

  async setTaskPaused(taskId: string, paused: boolean, now: number): Promise<TaskQueueRow> {
    return setTaskPaused(this.database, taskId, paused, now)
  }

  async taskQueues(): Promise<TaskQueueRow[]> {
    return taskQueues(this.database)
  }

  /** Ends the pool (waiting for statements in flight) and the notification connection. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.notifications.close()
    await this.database.pool.end()
  }

  private closed = false
}
