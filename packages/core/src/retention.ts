import type { Clock, TimerHandle } from './clock'
import { defer } from './defer'
import type { Logger } from './logger'
import type { PurgeOutcome, Storage } from './storage'

/**
 * How long a finished execution tree (and a published event) is kept after it finished, in
 * ms, or `'forever'`. `0` is not a retention: it reads as "delete at once" to some and "never
 * delete" to others, so neither is guessed; say `'forever'`.
 */
export type RetentionMs = number | 'forever'

const DAY = 24 * 60 * 60 * 1000
/** @default 7 days */
export const DEFAULT_RETENTION_MS = 7 * DAY
/** Shortest retention: 1 s (a finished execution must stay readable long enough to be waited on). */
export const MIN_RETENTION_MS = 1_000
/** Longest numeric retention: 10 years; beyond that, say `'forever'`. */
export const MAX_RETENTION_MS = 3650 * DAY
/** Most rows deleted per purge transaction. @default 500 */
export const DEFAULT_PURGE_BATCH_SIZE = 500
/** Longest pause between purges. */
const MAX_PURGE_INTERVAL_MS = 60_000
/** Free pages given back per `reclaimSpace` call (4 MiB of 4 KiB pages): short write transactions. */
const RECLAIM_PAGES_PER_CALL = 1024

/** Whether `value` is a valid retention (see {@link RetentionMs}). */
export function isRetentionMs(value: unknown): value is RetentionMs {
  return (
    value === 'forever' ||
    (Number.isInteger(value) &&
      (value as number) >= MIN_RETENTION_MS &&
      (value as number) <= MAX_RETENTION_MS)
  )
}

export function checkRetentionMs(value: unknown, where: string): asserts value is RetentionMs {
  if (!isRetentionMs(value))
    throw new TypeError(
      `${where} must be 'forever' or an integer from ${MIN_RETENTION_MS} to ${MAX_RETENTION_MS} ms, got ${JSON.stringify(value)}`,
    )
}

export interface RetentionOptions {
  /**
   * How long finished execution trees, with their history, steps, signals and idempotency keys,
   * and published events are kept after they finished; a task's own `retentionMs` overrides it
   * for the trees it is the root of. `'forever'` keeps them. @default 7 days
   */
  retentionMs?: RetentionMs
  /**
   * How often a purge runs while the engine is started. @default a quarter of the shortest
   * retention in use, from 1 s to 60 s
   */
  purgeIntervalMs?: number
  /** Most rows deleted per purge transaction (the SQLite writer is held that long). @default 500 */
  purgeBatchSize?: number
}

/** What one purge pass did. */
export interface PurgeReport {
  executions: number
  history: number
  steps: number
  signals: number
  events: number
  /** Transactions it took. */
  batches: number
  /**
   * The longest batch, in ms: until the storage call returned (with SQLite's synchronous
   * driver, the transaction itself).
   */
  maxBatchMs: number
  /** Free database pages given back to the file system afterwards. */
  reclaimedPages: number
}

/**
 * Deletes finished execution trees past their retention, from a timer, in small transactions
 * with a yield to the event loop between them (claims and settlements interleave; none waits
 * behind more than one batch). After a pass that deleted something, free pages are given back
 * to the file system in chunks. A failed pass is logged and retried at the next interval.
 */
export class Retention {
  readonly defaultRetentionMs: number | null
  readonly retentionByTask: Readonly<Record<string, number | null>>
  readonly intervalMs: number
  private readonly batchSize: number
  private timer: TimerHandle | undefined
  private running: Promise<PurgeReport> | undefined
  private stopped = true
  /** `stop()` was called: a pass in progress ends after its current batch. */
  private halting = false

  constructor(
    private readonly deps: {
      storage: Storage
      /** The registered tasks (a `TaskRegistry`): their own retentions. */
      registry: { list(): readonly { id: string; retentionMs?: RetentionMs | undefined }[] }
      clock: Clock
      logger: Logger
    },
    options: RetentionOptions = {},
  ) {
    const retention = options.retentionMs ?? DEFAULT_RETENTION_MS
    checkRetentionMs(retention, 'retentionMs')
    this.defaultRetentionMs = retention === 'forever' ? null : retention
    const byTask: Record<string, number | null> = {}
    for (const task of deps.registry.list()) {
      if (task.retentionMs !== undefined)
        byTask[task.id] = task.retentionMs === 'forever' ? null : task.retentionMs
    }
    this.retentionByTask = byTask
    const shortest = Math.min(
      ...[this.defaultRetentionMs, ...Object.values(byTask)].map((ms) => ms ?? Infinity),
    )
    this.intervalMs =
      options.purgeIntervalMs ?? Math.min(MAX_PURGE_INTERVAL_MS, Math.max(1_000, Math.floor(shortest / 4)))
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 1)
      throw new TypeError(
        `purgeIntervalMs must be a positive integer, got ${String(options.purgeIntervalMs)}`,
      )
    this.batchSize = options.purgeBatchSize ?? DEFAULT_PURGE_BATCH_SIZE
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new TypeError(`purgeBatchSize must be a positive integer, got ${String(options.purgeBatchSize)}`)
  }

  /** Whether anything can ever be purged (some retention is not `'forever'`). */
  get active(): boolean {
    return this.defaultRetentionMs !== null || Object.values(this.retentionByTask).some((ms) => ms !== null)
  }

  /** Purges every `intervalMs` until `stop()`. */
  start(): void {
    this.stopped = false
    this.halting = false
    if (this.active) this.arm()
  }

  /** Stops the timer and waits for a pass in progress (it ends after its current batch). */
  async stop(): Promise<void> {
    this.stopped = true
    this.halting = true
    if (this.timer) this.deps.clock.clearTimeout(this.timer)
    this.timer = undefined
    await this.running?.catch(() => {})
  }

  /**
   * One pass now: purge batches until nothing is due, then give free pages back. Concurrent
   * calls share the pass in progress. Throws what storage throws.
   */
  purge(): Promise<PurgeReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined))
    return this.running
  }

  private arm(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined
      this.purge()
        .catch((error: unknown) => this.deps.logger.error({ err: error }, 'retention purge failed'))
        .finally(() => {
          if (!this.stopped) this.arm()
        })
    }, this.intervalMs)
  }

  private async pass(): Promise<PurgeReport> {
    const report: PurgeReport = {
      executions: 0,
      history: 0,
      steps: 0,
      signals: 0,
      events: 0,
      batches: 0,
      maxBatchMs: 0,
      reclaimedPages: 0,
    }
    const now = this.deps.clock.now()
    let outcome: PurgeOutcome
    do {
      const started = performance.now()
      const pending = this.deps.storage.purge({
        now,
        defaultRetentionMs: this.defaultRetentionMs,
        retentionByTask: this.retentionByTask,
        limit: this.batchSize,
      })
      // Until the call returns: with a synchronous driver (SQLite), exactly the transaction,
      // which is what holds the writer (awaiting would add whatever else the turn runs).
      report.maxBatchMs = Math.max(report.maxBatchMs, performance.now() - started)
      outcome = await pending
      report.batches++
      for (const key of ['executions', 'history', 'steps', 'signals', 'events'] as const)
        report[key] += outcome[key]
      // Let claims, settlements and requests run between two batches.
      await new Promise<void>((resolve) => defer(resolve))
    } while (outcome.more && !this.halting)
    if (report.executions + report.events > 0) {
      for (;;) {
        const { freedPages, freePages } = await this.deps.storage.reclaimSpace(RECLAIM_PAGES_PER_CALL)
        report.reclaimedPages += freedPages
        if (freePages === 0 || freedPages === 0) break
        await new Promise<void>((resolve) => defer(resolve))
      }
      this.deps.logger.info(
        { ...report, maxBatchMs: Math.round(report.maxBatchMs * 100) / 100 },
        'retention purge',
      )
    }
    return report
  }
}
