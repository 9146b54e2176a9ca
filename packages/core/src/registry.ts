import { isTask } from './task'
import type { AnyTask, TaskSource } from './task-types'

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
  private changes = 0

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

  /** Goes up by one at each change of the tasks (`replaceFromSources`): caches of `ids()` compare it. */
  get version(): number {
    return this.changes
  }

  /** The distinct sources of the registered tasks (see `TaskSource`), in registration order. */
  sources(): TaskSource[] {
    return [...new Set(this.list().flatMap((t) => (t.source ? [t.source] : [])))]
  }

  /**
   * Registers what each source loaded: a new id is added (keyed by its id), a task of the same
   * id from the same source replaced. A task its source no longer offers stays registered, so
   * that its executions still find it (`missing`). Throws `TypeError`, changing nothing, when
   * an entry is not a task of its source, or takes an id of another source's or the tasks
   * module's task.
   */
  replaceFromSources(
    loaded: readonly { source: TaskSource; tasks: readonly AnyTask[] }[],
  ): { source: TaskSource; added: string[]; updated: string[]; missing: string[] }[] {
    const offeredBy = new Map<string, TaskSource>()
    for (const { source, tasks } of loaded) {
      for (const t of tasks) {
        if (!isTask(t) || t.source !== source)
          throw new TypeError(`${source.name}: loaded something that is not one of its tasks`)
        const other = offeredBy.get(t.id)
        if (other !== undefined)
          throw new TypeError(`the id "${t.id}" is offered by both ${other.name} and ${source.name}`)
        offeredBy.set(t.id, source)
        const existing = this.byId.get(t.id) ?? this.byKey.get(t.id)
        if (existing && existing.source !== source)
          throw new TypeError(
            `${source.name}: the id "${t.id}" is already taken by ${existing.source ? existing.source.name : 'a task of the tasks module'}`,
          )
      }
    }
    const results = loaded.map(({ source, tasks }) => {
      const added: string[] = []
      const updated: string[] = []
      for (const t of tasks) {
        if (this.byId.has(t.id)) updated.push(t.id)
        else added.push(t.id)
        this.byId.set(t.id, t)
        const key = this.keyOf.get(t.id) ?? t.id
        this.keyOf.set(t.id, key)
        this.byKey.set(key, t)
      }
      const missing = this.list()
        .filter((t) => t.source === source && offeredBy.get(t.id) !== source)
        .map((t) => t.id)
      return { source, added, updated, missing }
    })
    this.changes++
    return results
  }
}
