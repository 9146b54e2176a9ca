import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { TaskRegistry, type StandardSchemaV1, type TaskMap } from '@ratchet/core'

/**
 * Imports a tasks module (its `tasks` export, or its default export) and checks that it is
 * an object of tasks. Throws an error naming the module and what is wrong. A `.ts`, `.mts`,
 * `.cts` or `.tsx` module is compiled by tsx's loader as it is imported; packages it imports
 * resolve from the module's own folder upwards (the user's project).
 */
export async function loadTasks(modulePath: string): Promise<TaskMap> {
  return (await loadTasksModule(modulePath)).tasks
}

/** Extensions of a TypeScript module, which Node 20 cannot run by itself. */
const TYPESCRIPT_MODULE = /\.(?:ts|mts|cts|tsx)$/

/**
 * Registers tsx's ESM loader (a dependency of @ratchet/server) before a TypeScript tasks module
 * is imported by the compiled server. Not namespaced on purpose: a namespaced loader gives the
 * module its own copies of the packages it imports, and the tasks module must share this
 * process's `@ratchet/core` (its `task()` objects, `TerminalError` and the other error classes
 * are recognised by identity). JavaScript modules load without it; running from the sources
 * (`npm run dev`, tests), tsx is already in place.
 */
async function registerTypeScriptLoader(modulePath: string): Promise<void> {
  if (!TYPESCRIPT_MODULE.test(modulePath.replace(/[?#].*$/, '')) || import.meta.url.endsWith('.ts')) return
  typeScriptLoader ??= import('tsx/esm/api').then(({ register }) => void register())
  await typeScriptLoader
}
let typeScriptLoader: Promise<void> | undefined

/**
 * Like `loadTasks`, and also the module's `events` export: the Standard Schema (usually a
 * discriminated union on `type`) that published events must match, when it has one.
 */
export async function loadTasksModule(
  modulePath: string,
): Promise<{ tasks: TaskMap; events: StandardSchemaV1 | undefined }> {
  if (!/^file:/.test(modulePath)) checkFile(modulePath)
  const url = /^file:/.test(modulePath) ? modulePath : pathToFileURL(resolve(modulePath)).href
  let mod: { tasks?: unknown; default?: unknown; events?: unknown }
  try {
    await registerTypeScriptLoader(url)
    mod = (await import(url)) as typeof mod
  } catch (error) {
    throw new Error(`tasks module "${modulePath}" cannot load: ${(error as Error).message}`, {
      cause: error,
    })
  }
  const tasks = mod.tasks ?? mod.default
  if (typeof tasks !== 'object' || tasks === null) {
    throw new Error(
      `tasks module "${modulePath}" must export its tasks as one object: export const tasks = { ... }`,
    )
  }
  try {
    new TaskRegistry(tasks as TaskMap)
  } catch (error) {
    throw new Error(`tasks module "${modulePath}": ${(error as Error).message}`, { cause: error })
  }
  const events = mod.events
  if (events !== undefined && typeof (events as StandardSchemaV1)['~standard']?.validate !== 'function') {
    throw new Error(
      `tasks module "${modulePath}": its events export must be a Standard Schema (e.g. a zod schema)`,
    )
  }
  return { tasks: tasks as TaskMap, events: events as StandardSchemaV1 | undefined }
}

/**
 * A missing file or a folder is said plainly, before Node's import error (which names the
 * server's own bundled file as the importer) can say it less clearly.
 */
function checkFile(modulePath: string): void {
  const path = resolve(modulePath)
  let isFile: boolean
  try {
    isFile = statSync(path).isFile()
  } catch {
    throw new Error(`tasks module "${modulePath}": no such file (${path})`)
  }
  if (!isFile)
    throw new Error(`tasks module "${modulePath}" is a folder; give the file that exports your tasks`)
}
