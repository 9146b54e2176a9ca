import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { TaskRegistry, type StandardSchemaV1, type TaskMap } from '@ratchet/core'

/**
 * Imports a tasks module (its `tasks` export, or its default export) and checks that it is
 * an object of tasks. Throws an error naming the module and what is wrong.
 */
export async function loadTasks(modulePath: string): Promise<TaskMap> {
  return (await loadTasksModule(modulePath)).tasks
}

/**
 * Like `loadTasks`, and also the module's `events` export: the Standard Schema (usually a
 * discriminated union on `type`) that published events must match, when it has one.
 */
export async function loadTasksModule(
  modulePath: string,
): Promise<{ tasks: TaskMap; events: StandardSchemaV1 | undefined }> {
  const url = /^file:/.test(modulePath) ? modulePath : pathToFileURL(resolve(modulePath)).href
  let mod: { tasks?: unknown; default?: unknown; events?: unknown }
  try {
    mod = (await import(url)) as typeof mod
  } catch (error) {
    throw new Error(`RATCHET_TASKS: cannot load "${modulePath}": ${(error as Error).message}`, {
      cause: error,
    })
  }
  const tasks = mod.tasks ?? mod.default
  if (typeof tasks !== 'object' || tasks === null) {
    throw new Error(
      `RATCHET_TASKS: "${modulePath}" must export its tasks as one object: export const tasks = { ... }`,
    )
  }
  try {
    new TaskRegistry(tasks as TaskMap)
  } catch (error) {
    throw new Error(`RATCHET_TASKS: "${modulePath}": ${(error as Error).message}`, { cause: error })
  }
  const events = mod.events
  if (events !== undefined && typeof (events as StandardSchemaV1)['~standard']?.validate !== 'function') {
    throw new Error(
      `RATCHET_TASKS: "${modulePath}": its events export must be a Standard Schema (e.g. a zod schema)`,
    )
  }
  return { tasks: tasks as TaskMap, events: events as StandardSchemaV1 | undefined }
}
