import type { Clock, TimerHandle } from './clock'
import { serializeError } from './errors'
import type { Logger } from './logger'
import type { ExecutionObserver, StorageOperation } from './observer'

/** The last failed storage call of the executor, while none has succeeded since (`Executor.storageFailure`). */
export interface StorageFailure {
  operation: StorageOperation
  message: string
  /** When it failed (clock ms). */
  at: number
}

/**
 * Whether an error says the storage cannot be reached (`StorageUnavailableError`, by code so a
 * copy of the class from another bundle counts too): nothing was written, the same call may be
 * made again later.
 */
export function isStorageUnavailable(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'STORAGE_UNAVAILABLE'
  )
}

/** Errors of the executor's own reads for a run (its record, its inbox): see `rethrowOwnRead`. */
const ownReads = new WeakSet<object>()

/**
 * Marks an outage error as the executor's own, not the run's: a run that fails with it is
 * released instead of counting a failure (see `isOwnUnavailableRead`). Returns the error.
 */
export function ownRead<E extends object>(error: E): E {
  ownReads.add(error)
  return error
}

/**
 * Rethrows the error of a read the executor made for a run itself (loading its record or
 * inbox), marked so that an outage there releases the run instead of counting a failure (see
 * `isOwnUnavailableRead`). For `.catch`.
 */
export function rethrowOwnRead(error: unknown): never {
  if (typeof error === 'object' && error !== null) ownRead(error)
  throw error
}

/**
 * The storage was unreachable for one of the executor's own reads of a run. The same code
 * thrown by the run's own calls (a client of another Ratchet server, say) is the task's error,
 * retried by its policy with back-off: released at once, it would run again and again.
 */
export function isOwnUnavailableRead(error: unknown): boolean {
  return isStorageUnavailable(error) && ownReads.has(error as object)
}

/** The first retry after a failed call waits this long; each further one twice as long. */
const FIRST_RETRY_MS = 100

/**
 * Retry delays after failed storage calls: FIRST_RETRY_MS, doubling up to `maxMs`, each with
 * ±25 % jitter so that replicas losing the same database do not retry in step. `reset()` after
 * a success.
 */
export class Backoff {
  private attempt = 0

  constructor(
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next retry (ms). */
  next(): number {
    const base = Math.min(this.maxMs, FIRST_RETRY_MS * 2 ** Math.min(this.attempt, 20))
    this.attempt++
    return Math.max(1, Math.min(this.maxMs, Math.round(base * (0.75 + 0.5 * this.random()))))
  }

  reset(): void {
    this.attempt = 0
  }
}

/**
 * One retry at a time of work the storage refused while unreachable (the claim loop's pass,
 * the write-behind's flush): `arm()` runs `retry` after the back-off's next delay; `reset()`
 * after a success starts the back-off over; `fireNow()` runs a pending retry at once (the
 * storage is back). `pending` settles when the armed retry runs (or is cancelled).
 */
export class StorageRetry {
  private readonly backoff: Backoff
  private timer: TimerHandle | undefined
  private delayMs = 0
  private settle: (() => void) | undefined
  /** Settles when the armed retry runs or is cancelled; `undefined` while none is armed. */
  pending: Promise<void> | undefined

  constructor(
    private readonly clock: Clock,
    settings: { maxMs: number; random: () => number },
    private readonly retry: () => void,
  ) {
    this.backoff = new Backoff(settings.maxMs, settings.random)
  }

  get armed(): boolean {
    return this.timer !== undefined
  }

  /** Arms the retry after the next back-off delay, unless one is armed; returns its delay (ms). */
  arm(): number {
    if (this.timer) return this.delayMs
    this.delayMs = this.backoff.next()
    this.pending = new Promise<void>((resolve) => (this.settle = resolve))
    this.timer = this.clock.setTimeout(() => this.run(), this.delayMs)
    return this.delayMs
  }

  /** A call succeeded: the next outage starts from the first delay. */
  reset(): void {
    this.backoff.reset()
  }

  /** The storage is back: the armed retry, if any, runs now. */
  fireNow(): void {
    this.backoff.reset()
    if (!this.timer) return
    this.clock.clearTimeout(this.timer)
    this.run()
  }

  /** Disarms the retry without running it (the executor stops, or gave up). */
  cancel(): void {
    if (this.timer) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.done()
  }

  private run(): void {
    this.timer = undefined
    this.done()
    this.retry()
  }

  private done(): void {
    const settle = this.settle
    this.pending = undefined
    this.settle = undefined
    settle?.()
  }
}

/**
 * An outage that starts this soon after the last one was logged is logged as a warning: a
 * connection that flaps (a call or two getting through between failures, as when every backend
 * is being terminated) is one incident, with one error line.
 */
const OUTAGE_RELOG_MS = 60_000

/**
 * Whether the executor's own storage calls (claims, housekeeping, result and step writes, lease
 * recovery and heartbeats) currently fail: the last failure, cleared by the next success. A
 * readiness probe reports it (`Executor.storageFailure`).
 *
 * It also keeps the log readable through an outage: the first call that finds the storage
 * unreachable logs one error line, the calls failing after it only debug lines, and the first
 * success after it one info line with how long it lasted; an outage starting within a minute of
 * the last one logged (a flapping connection) is a warning. Any other failure (a bug, a refused
 * write) is an error line each time.
 */
export class StorageHealth {
  /** The last failed call while none has succeeded since, else `undefined`. */
  failure: StorageFailure | undefined
  /** The outage in progress: since when, and how many calls failed in it. */
  private outage: { since: number; failedCalls: number } | undefined
  /** When the last outage was logged at error level (clock ms). */
  private outageLoggedAt: number | undefined
  private readonly recoveredListeners: (() => void)[] = []

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly observer: ExecutionObserver | undefined,
  ) {}

  /** The storage is unreachable right now (the last call found it so, none succeeded since). */
  get unavailable(): boolean {
    return this.outage !== undefined
  }

  /**
   * Calls `listener` when an outage ends (the first success after it): what waits on a retry
   * back-off goes at once, before leases lapse.
   */
  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener)
  }

  /** A storage call succeeded: the storage is reachable. */
  ok(): void {
    this.failure = undefined
    if (this.outage) {
      const { since, failedCalls } = this.outage
      this.outage = undefined
      this.logger.info(
        { outageMs: this.clock.now() - since, failedCalls },
        'storage reachable again; queued writes and claims resume',
      )
      for (const listener of this.recoveredListeners) listener()
    }
  }

  /**
   * A storage call failed: remembered for the readiness probe, told to the observer, and
   * logged as `message` (what failed, what happens next) unless `message` is omitted (the
   * caller hands the error on instead) or an outage was already logged.
   */
  failed(operation: StorageOperation, error: unknown, message?: string, facts: object = {}): void {
    const at = this.clock.now()
    this.failure = { operation, message: error instanceof Error ? error.message : String(error), at }
    this.observer?.storageError?.(operation, error)
    if (isStorageUnavailable(error)) {
      if (this.outage) {
        this.outage.failedCalls++
        this.logger.debug({ operation, ...facts }, `storage still unreachable: ${message ?? operation}`)
        return
      }
      this.outage = { since: at, failedCalls: 1 }
      const flapping = this.outageLoggedAt !== undefined && at - this.outageLoggedAt < OUTAGE_RELOG_MS
      if (!flapping) this.outageLoggedAt = at
      ;(flapping ? this.logger.warn : this.logger.error).call(
        this.logger,
        { err: serializeError(error), operation, ...facts },
        `storage unreachable${flapping ? ' again' : ''}: claims pause and results stay queued in memory, ` +
          'retried with back-off until it is back (further failures are logged at debug level)',
      )
      return
    }
    if (message !== undefined) this.logger.error({ err: serializeError(error), ...facts }, message)
  }
}
