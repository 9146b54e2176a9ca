import type { ChangeFeed } from './change-feed'
import type { Clock } from './clock'
import type { Logger } from './logger'
import type { ExecutionObserver } from './observer'
import type { TaskRegistry } from './registry'
import type { StorageHealth } from './storage-health'
import type { Storage } from './storage'

export interface ExecutorDeps {
  storage: Storage
  registry: TaskRegistry
  clock: Clock
  logger: Logger
  changes: ChangeFeed
}

/** Where the executor is in its life (the state graph heads executor.ts). */
export type ExecutorState = 'idle' | 'running' | 'draining' | 'stopped'

/**
 * @internal What the executor's parts (claim loop, attempts, write-behind, leases) share of it:
 * its dependencies, who it is, its state, and the health of its storage calls. The `Executor`
 * is one; each part reads it, none owns it.
 */
export interface ExecutorContext {
  readonly deps: ExecutorDeps
  /** This worker's lease owner id. */
  readonly workerId: string
  readonly observer: ExecutionObserver | undefined
  readonly health: StorageHealth
  readonly state: ExecutorState
}
