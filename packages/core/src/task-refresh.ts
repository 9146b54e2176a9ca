/**
 * Loading task sources again while the engine runs (see `TaskSource`): on demand, when an
 * enqueue names an id the registry does not know, and on each source's interval.
 */
import type { Clock, TimerHandle } from './clock'
import { serializeError } from './errors'
import type { Logger } from './logger'
import type { TaskRegistry } from './registry'
import type { TaskSource } from './task-types'

/** What one refresh changed, per source (see `TaskRegistry.replaceFromSources`). */
export interface TaskRefreshResult {
  sources: {
    name: string
    /** Ids the source offers now that were not registered. */
    added: string[]
    /** Ids registered again with the source's current definition (schema, mode, options). */
    updated: string[]
    /** Ids the source no longer offers; still registered until a restart, so their executions find them. */
    missing: string[]
  }[]
}

/**
 * A source that could not be loaded: which one and why. Nothing was registered from any
 * source by the refresh that threw it.
 */
export class TaskSourceError extends Error {
  readonly sourceName: string
  /**
   * True when the sources loaded but offer an id that is taken (by another source or the tasks
   * module): a configuration mistake, not an outage, so asking again will not help.
   */
  readonly conflict: boolean
  constructor(sourceName: string, cause: unknown, conflict = false) {
    super(
      conflict
        ? `cannot register the tasks of ${sourceName}: ${(cause as Error)?.message ?? String(cause)}`
        : `cannot load the tasks of ${sourceName}: ${(cause as Error)?.message ?? String(cause)}`,
      { cause },
    )
    this.name = 'TaskSourceError'
    this.sourceName = sourceName
    this.conflict = conflict
  }
}

/**
 * @default 5_000: after a refresh for an unknown id, another unknown id waits this long before
 * it may load the sources again, so that a client enqueueing a mistyped id in a loop cannot
 * make the server fetch every app's manifest at that rate.
 */
export const UNKNOWN_ID_REFRESH_MS = 5_000

export class TaskRefresher {
  private running: Promise<TaskRefreshResult> | undefined
  private lastUnknownRefreshAt = -Infinity
  private readonly timers = new Map<TaskSource, TimerHandle>()
  private started = false
  /** Loads so far; per source, the load whose result it holds: an older one that ends later is dropped. */
  private loads = 0
  private readonly appliedLoad = new Map<TaskSource, number>()

  /** `onAdded`: new ids were registered (the claim loop should look for their queued work). */
  constructor(
    private readonly deps: { registry: TaskRegistry; clock: Clock; logger: Logger; onAdded: () => void },
  ) {}

  /**
   * Loads every source again and registers what they offer now; several calls at once share
   * one refresh. All or nothing: when one source cannot be loaded, rejects with its
   * `TaskSourceError` and registers nothing. Resolves with an empty list when no task has a
   * source.
   */
  refresh(): Promise<TaskRefreshResult> {
    this.running ??= this.load(this.deps.registry.sources()).finally(() => {
      this.running = undefined
    })
    return this.running
  }

  /**
   * For an enqueue that named an unknown id: refreshes when some task has a source and no
   * such refresh ran in the last `UNKNOWN_ID_REFRESH_MS`, and resolves whether the registry
   * changed. Never rejects: a failed refresh is logged, and the enqueue fails as it would have.
   */
  async refreshForUnknownId(id: string): Promise<boolean> {
    const now = this.deps.clock.now()
    if (this.deps.registry.sources().length === 0) return false
    if (!this.running && now - this.lastUnknownRefreshAt < UNKNOWN_ID_REFRESH_MS) return false
    this.lastUnknownRefreshAt = now
    const before = this.deps.registry.version
    try {
      await this.refresh()
    } catch (error) {
      this.deps.logger.warn({ err: serializeError(error), taskId: id }, 'refreshing the task sources failed')
      return false
    }
    return this.deps.registry.version !== before
  }

  /** Arms each source's `refreshIntervalMs` timer. */
  start(): void {
    this.started = true
    for (const source of this.deps.registry.sources()) this.arm(source)
  }

  stop(): void {
    this.started = false
    for (const timer of this.timers.values()) this.deps.clock.clearTimeout(timer)
    this.timers.clear()
  }

  private arm(source: TaskSource): void {
    const every = source.refreshIntervalMs
    if (!this.started || every === undefined || this.timers.has(source)) return
    this.timers.set(
      source,
      this.deps.clock.setTimeout(() => {
        this.timers.delete(source)
        this.load([source])
          .catch((error: unknown) =>
            this.deps.logger.warn({ err: serializeError(error) }, 'refreshing the task sources failed'),
          )
          .finally(() => this.arm(source))
      }, every),
    )
  }

  private async load(all: readonly TaskSource[]): Promise<TaskRefreshResult> {
    const { registry, logger } = this.deps
    const ticket = ++this.loads
    const loadedAll = await Promise.all(
      all.map((source) =>
        source.load().then(
          (tasks) => ({ source, tasks }),
          (error: unknown) => {
            throw new TaskSourceError(source.name, error)
          },
        ),
      ),
    )
    // A load that began after this one and already registered its result is newer: keep it.
    const loaded = loadedAll.filter(({ source }) => (this.appliedLoad.get(source) ?? 0) < ticket)
    const result: TaskRefreshResult = { sources: [] }
    let changed: ReturnType<TaskRegistry['replaceFromSources']>
    try {
      changed = registry.replaceFromSources(loaded)
    } catch (error) {
      throw new TaskSourceError(loaded.map((l) => l.source.name).join(', '), error, true)
    }
    for (const { source } of loaded) this.appliedLoad.set(source, ticket)
    if (changed.some((c) => c.added.length > 0)) this.deps.onAdded()
    for (const { source, ...changes } of changed) {
      result.sources.push({ name: source.name, ...changes })
      if (changes.added.length > 0 || changes.missing.length > 0)
        logger.info(
          { source: source.name, added: changes.added, missing: changes.missing },
          'task source refreshed',
        )
    }
    return result
  }
}
