/** Pausing and resuming a task's queue (`Engine.pauseTask`, `Engine.resumeTask`). */
import type { Clock } from './clock'
import { UnknownTaskError } from './errors'
import type { Executor } from './executor'
import type { TaskRegistry } from './registry'
import type { Storage } from './storage'

interface Deps {
  storage: Storage
  registry: TaskRegistry
  clock: Clock
  executor: Executor
}

/** A task queue's state, as the engine reports it. */
export interface TaskQueueState {
  taskId: string
  /** Since when it is paused (ms), or `null`. */
  pausedAt: number | null
}

/** See `Engine.pauseTask` and `Engine.resumeTask`. */
export async function setTaskPaused(
  { storage, registry, clock, executor }: Deps,
  idOrKey: string,
  paused: boolean,
): Promise<TaskQueueState> {
  const task = registry.resolve(idOrKey)
  if (!task) throw new UnknownTaskError(idOrKey, registry.ids())
  const row = await storage.setTaskPaused(task.id, paused, clock.now())
  // This process's claim loop: other processes are woken by the storage (PostgreSQL's NOTIFY).
  if (!paused) executor.wake()
  return { taskId: row.taskId, pausedAt: row.pausedAt }
}
