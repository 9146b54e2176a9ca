import {
  Engine,
  ExecutionFailedError,
  tasksOf,
  type DispatchExecutor,
  type Execution,
  type Logger,
  type TaskMap,
} from '@ratchet/core'
import { openSqliteStorage, type SqliteStorage } from '@ratchet/storage'

export interface LocalExecutorOptions {
  /** Objects with @dispatch / @dispatchAwait methods: their tasks run here. */
  instances?: object[]
  /** More tasks (children your methods start, for instance). */
  tasks?: TaskMap
  /** The SQLite database. @default ':memory:' (nothing survives the process) */
  filename?: string
  /** @default 10 */
  concurrency?: number
  logger?: Logger
}

/**
 * A `call` through a LocalExecutor whose execution did not complete: an `ExecutionFailedError`
 * (as `remoteExecutor` throws), so `error instanceof ExecutionFailedError` holds with either.
 */
export class LocalExecutionFailedError extends ExecutionFailedError<Execution> {}

/** setTimeout's largest delay: "wait for as long as it takes". */
const FOREVER_MS = 2_147_483_647

/**
 * Runs decorated methods in this process, for tests and development: a real engine (steps,
 * retries, sleeps, children) on an in-memory SQLite database and the system clock.
 * `useExecutor(new LocalExecutor({ instances: [billing] }))`; `close()` when done.
 */
export class LocalExecutor implements DispatchExecutor {
  readonly engine: Engine
  private readonly storage: SqliteStorage

  constructor(options: LocalExecutorOptions = {}) {
    this.storage = openSqliteStorage({ filename: options.filename ?? ':memory:' })
    this.engine = new Engine({
      storage: this.storage,
      tasks: { ...(options.instances?.length ? tasksOf(...options.instances) : {}), ...options.tasks },
      concurrency: options.concurrency ?? 10,
      ...(options.logger ? { logger: options.logger } : {}),
    })
    this.engine.start()
  }

  async dispatch(taskId: string, input: unknown): Promise<void> {
    await this.engine.enqueue(taskId, input)
  }

  async call(taskId: string, input: unknown): Promise<unknown> {
    const { execution } = await this.engine.enqueue(taskId, input)
    const done = await this.engine.waitFor(execution.id, { timeoutMs: FOREVER_MS })
    if (done.status !== 'completed') throw new LocalExecutionFailedError(done)
    return done.output
  }

  /** Stops the engine (running attempts get `drainMs`) and closes the database. */
  async close(drainMs = 1_000): Promise<void> {
    await this.engine.stop({ drainMs })
    await this.storage.close()
  }
}
