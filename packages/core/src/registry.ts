import { isTask } from './task'
import type { AnyTask } from './task-types'

/** The shape of a user's tasks module export: `export const tasks = { sendEmail, ... }`. */
export type TaskMap = Readonly<Record<string, AnyTask>>

/**
 * The tasks a server runs. A task is found by its id, or by its key in the exported tasks
 * object (typed clients address tasks by key, since a type-only import has no runtime ids).
 */
export class TaskRegistry {
  private readonly byId = new Map<string, AnyTask>()
  private readonly byKey = new Map<string, AnyTask>()
  private readonly keyOf = new Map<string, string>()

  /** Throws `TypeError` on a non-task entry, a duplicate id, or a key that names another task's id. */
  constructor(tasks: TaskMap | readonly AnyTask[]) {
    const entries: [string | undefined, unknown][] = Array.isArray(tasks)
      ? tasks.map((t: unknown) => [undefined, t])
      : Object.entries(tasks)
    for (const [key, value] of entries) {
      if (!isTask(value)) {
        throw new TypeError(
          `tasks${key === undefined ? '' : `.${key}`} is not a task (define it with task({ ... }))`,
        )
      }
      const existing = this.byId.get(value.id)
      if (existing && existing !== value) throw new TypeError(`two different tasks use the id "${value.id}"`)
      this.byId.set(value.id, value)
      if (key !== undefined) {
        this.byKey.set(key, value)
        if (!this.keyOf.has(value.id)) this.keyOf.set(value.id, key)
      }
    }
    for (const [key, t] of this.byKey) {
      const owner = this.byId.get(key)
      if (owner && owner !== t) {
        throw new TypeError(`tasks.${key} is task "${t.id}", but "${key}" is the id of another task`)
      }
    }
  }

  /** The task with this id, or else with this key; `undefined` when neither exists. */
  resolve(idOrKey: string): AnyTask | undefined {
    return this.byId.get(idOrKey) ?? this.byKey.get(idOrKey)
  }

  get(id: string): AnyTask | undefined {
    return this.byId.get(id)
  }

  /** The key of a task in the tasks object, when it was registered from one. */
  keyFor(id: string): string | undefined {
    return this.keyOf.get(id)
  }

  list(): AnyTask[] {
    return [...this.byId.values()]
  }

  /** The tasks started by events of `type` (declared with `on`), in registration order. */
  listening(type: string): AnyTask[] {
    return this.list().filter((t) => t.on.includes(type))
  }

  ids(): string[] {
    return [...this.byId.keys()]
  }
}
