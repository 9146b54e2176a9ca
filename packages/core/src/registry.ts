import { isTask } from './task'
import type { AnyTask, TaskSource } from './task-types'

const SOURCE_KIND = 'ratchet.taskSource'

/** Whether `value` is a `TaskSource` (by its `kind`, so that copies of this package agree). */
export function isTaskSource(value: unknown): value is TaskSource {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === SOURCE_KIND
}

/**
 * Declares `source` on a tasks object, under a symbol of its own that a spread
 * (`{ ...localTasks, ...fromApp }`) copies along: the registry then knows the source even
 * while it offers no task. Returns `tasks`.
 */
export function declareTaskSource<T extends object>(tasks: T, source: TaskSource): T {
  Object.defineProperty(tasks, Symbol(source.name), { value: source, enumerable: true })
  return tasks
}

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
  /** Sources declared by the tasks object (see `declareTaskSource`), with or without tasks yet. */
  private readonly declared: TaskSource[] = []
  /** Ids their source no longer offers: runs still find them, enqueues do not. */
  private readonly retired = new Set<string>()

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
    if (!Array.isArray(tasks))
      for (const symbol of Object.getOwnPropertySymbols(tasks)) {
        const value = (tasks as Record<symbol, unknown>)[symbol]
        if (isTaskSource(value) && !this.declared.includes(value)) this.declared.push(value)
      }
  }

  /** The task with this id, or else with this key; `undefined` when neither exists. */
  resolve(idOrKey: string): AnyTask | undefined {
    return this.byId.get(idOrKey) ?? this.byKey.get(idOrKey)
  }

  /** As `resolve`, but not a task its source no longer offers: what new executions may be made of. */
  resolveForEnqueue(idOrKey: string): AnyTask | undefined {
    const task = this.resolve(idOrKey)
    return task && !this.retired.has(task.id) ? task : undefined
  }

  /** The ids `resolveForEnqueue` finds. */
  enqueueableIds(): string[] {
    return this.ids().filter((id) => !this.retired.has(id))
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
    return this.list().filter((t) => t.on.includes(type) && !this.retired.has(t.id))
  }

  ids(): string[] {
    return [...this.byId.keys()]
  }

  /** Goes up by one at each change of the tasks (`replaceFromSources`): caches of `ids()` compare it. */
  get version(): number {
    return this.changes
  }

  /**
   * The task sources: the ones the tasks object declared (`declareTaskSource`: an app with no
   * functions yet is one), then those of the registered tasks, each once.
   */
  sources(): TaskSource[] {
    return [...new Set([...this.declared, ...this.list().flatMap((t) => (t.source ? [t.source] : []))])]
  }

  /**
   * Registers what each source loaded: a new id is added (keyed by its id), a task of the same
   * id from the same source replaced. A task its source no longer offers stays registered, so
   * that its executions still find it (`missing`), but new ones are refused (`resolveForEnqueue`)
   * until its source offers it again. Throws `TypeError`, changing nothing, when
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
      for (const t of tasks) this.retired.delete(t.id)
      for (const id of missing) this.retired.add(id)
      return { source, added, updated, missing }
    })
    this.changes++
    return results
  }
}
