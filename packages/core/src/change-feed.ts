import type { ExecutionStatus } from './state-machine'

/** A status change made by this process. */
export interface ExecutionChange {
  id: string
  taskId: string
  status: ExecutionStatus
  /** The run it happened in (`Execution.runs` at the time; 0 before the first claim). */
  run: number
  at: number
}

type Listener = (change: ExecutionChange) => void

/**
 * In-process fan-out of status changes, for waiters (long-polls, tests, metrics). It only
 * sees changes made by this process; with several replicas they come through the database.
 * Listeners must not throw; a throwing listener is isolated from the others.
 */
export class ChangeFeed {
  private readonly byId = new Map<string, Set<Listener>>()
  private readonly everything = new Set<Listener>()

  /** Calls `listener` for every change of execution `id`. Returns the unsubscribe function. */
  subscribe(id: string, listener: Listener): () => void {
    let set = this.byId.get(id)
    if (!set) this.byId.set(id, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.byId.get(id) === set) this.byId.delete(id)
    }
  }

  /** Calls `listener` for every change. Returns the unsubscribe function. */
  subscribeAll(listener: Listener): () => void {
    this.everything.add(listener)
    return () => this.everything.delete(listener)
  }

  emit(change: ExecutionChange): void {
    const set = this.byId.get(change.id)
    if (set) for (const l of [...set]) call(l, change)
    for (const l of this.everything) call(l, change)
  }
}

function call(listener: Listener, change: ExecutionChange) {
  try {
    listener(change)
  } catch {
    // A broken listener must not break the executor that emits.
  }
}
