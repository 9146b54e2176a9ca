import type { Clock } from './clock'
import type { ExecutionObserver, StorageOperation } from './observer'

/** The last failed storage call of the executor, while none has succeeded since (`Executor.storageFailure`). */
export interface StorageFailure {
  operation: StorageOperation
  message: string
  /** When it failed (clock ms). */
  at: number
}

/**
 * Whether the executor's own storage calls (claims, housekeeping, result and step writes, lease
 * recovery and heartbeats) currently fail: the last failure, cleared by the next success. A
 * readiness probe reports it (`Executor.storageFailure`).
 */
export class StorageHealth {
  /** The last failed call while none has succeeded since, else `undefined`. */
  failure: StorageFailure | undefined

  constructor(
    private readonly clock: Clock,
    private readonly observer: ExecutionObserver | undefined,
  ) {}

  /** A storage call succeeded: the storage is reachable. */
  ok(): void {
    this.failure = undefined
  }

  /** A storage call failed: remembered for the readiness probe, and told to the observer. */
  failed(operation: StorageOperation, error: unknown): void {
    this.failure = {
      operation,
      message: error instanceof Error ? error.message : String(error),
      at: this.clock.now(),
    }
    this.observer?.storageError?.(operation, error)
  }
}
