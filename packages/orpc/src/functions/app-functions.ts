import { declareTaskSource, MAX_TIMEOUT_MS, task, type AnyTask, type TaskSource } from '@ratchet/core'
import { checkSecret } from '../signing'
import { fetchManifest, invoker, type AppFetch } from './app-http'
import { driveAppFunction } from './driver'
import { jsonSchemaValidator } from './json-schema'
import type { Manifest } from './protocol'

export interface AppFunctionsOptions {
  /** The app's functions route, e.g. `https://shop.example.com/api/ratchet`. */
  url: string
  /** The secret shared with the app (at least 32 characters). */
  secret: string
  /** A fetch implementation (tests, proxies). @default globalThis.fetch */
  fetch?: AppFetch
  /** How long one manifest request may take. @default 10_000 */
  manifestTimeoutMs?: number
  /**
   * How long to keep asking for the manifest while the app cannot be reached or answers 5xx,
   * e.g. while it starts beside the server. @default 30_000
   */
  startupRetryMs?: number
  /** Told of each failed manifest request that will be retried. @default a console.warn line */
  onRetry?: (error: Error, tries: number) => void
  /**
   * How often the running server fetches the manifest again, to learn functions the app
   * deployed since (and changed schemas and options); `false`: only on demand (`ratchet tasks
   * refresh`, `POST /api/tasks/refresh`) and when an enqueue names an unknown id. A failed
   * refresh is logged and changes nothing. @default 60_000
   */
  refreshIntervalMs?: number | false
}

/** @default 60_000 (see `AppFunctionsOptions.refreshIntervalMs`). */
export const DEFAULT_REFRESH_INTERVAL_MS = 60_000

/**
 * The durable functions web apps host, as tasks for the server's tasks module:
 *
 * ```ts
 * export const tasks = {
 *   ...localTasks,
 *   ...(await appFunctions([
 *     { url: process.env.SHOP_URL!, secret: process.env.SHOP_SECRET! },
 *     { url: process.env.CRM_URL!, secret: process.env.CRM_SECRET! },
 *   ])),
 * }
 * ```
 *
 * Fetches each app's signed manifest (the ids, modes, options and JSON Schemas of its
 * functions) when the server starts; each function becomes a task keyed by its id, whose input
 * Ratchet checks at enqueue against the function's JSON Schema and whose runs invoke the app
 * over signed HTTP. Rejects when an app cannot be reached within `startupRetryMs`, answers no
 * valid manifest, or two apps offer the same function id, naming the URLs.
 *
 * Each app is a task source (`TaskSource`): the running server fetches its manifest again
 * every `refreshIntervalMs`, on demand, and when an enqueue names an id it does not know, so a
 * function the app deploys later can be enqueued without restarting the server.
 */
export async function appFunctions(
  apps: AppFunctionsOptions | readonly AppFunctionsOptions[],
): Promise<Record<string, AnyTask>> {
  const list: readonly AppFunctionsOptions[] = Array.isArray(apps) ? apps : [apps as AppFunctionsOptions]
  const loaded = await Promise.all(list.map(load))
  const tasks: Record<string, AnyTask> = {}
  const from = new Map<string, string>()
  for (const [i, { tasks: appTasks, source }] of loaded.entries()) {
    const { url } = list[i]!
    // Known to the server even while the app offers no function yet.
    declareTaskSource(tasks, source)
    for (const [id, fn] of Object.entries(appTasks)) {
      const other = from.get(id)
      if (other !== undefined)
        throw new TypeError(`appFunctions: the function id "${id}" is offered by both ${other} and ${url}`)
      from.set(id, url)
      tasks[id] = fn
    }
  }
  return tasks
}

async function load(
  options: AppFunctionsOptions,
): Promise<{ tasks: Record<string, AnyTask>; source: TaskSource }> {
  const secret = checkSecret(options.secret, 'appFunctions')
  const doFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request))
  const timeoutMs = options.manifestTimeoutMs ?? 10_000
  const invoke = invoker(options.url, secret, doFetch)
  const refreshIntervalMs =
    options.refreshIntervalMs === false
      ? undefined
      : (options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS)
  if (refreshIntervalMs !== undefined && (!Number.isInteger(refreshIntervalMs) || refreshIntervalMs < 1_000))
    throw new TypeError(
      `appFunctions: refreshIntervalMs must be an integer of at least 1000 ms or false, got ${String(refreshIntervalMs)}`,
    )
  const source: TaskSource = {
    kind: 'ratchet.taskSource',
    name: options.url,
    refreshIntervalMs,
    // A refresh asks once: the server is running, and the next refresh will ask again.
    load: async () =>
      tasksOf(await fetchManifest(options.url, secret, doFetch, { timeoutMs, retryForMs: 0 })),
  }
  const tasksOf = (manifest: Manifest): AnyTask[] =>
    manifest.functions.map((fn) => {
      const { id, description, retry, maxRecoveries, priority, deadlineMs } = fn
      return task({
        id,
        input: jsonSchemaValidator(fn.input, `input of ${id}`),
        description,
        // A run drives many invocations; each has its own limit (the function's timeoutMs).
        timeoutMs: MAX_TIMEOUT_MS,
        retry,
        maxRecoveries,
        priority,
        deadlineMs,
        run: driveAppFunction(fn, invoke),
        source,
      })
    })
  const manifest = await fetchManifest(options.url, secret, doFetch, {
    timeoutMs,
    retryForMs: options.startupRetryMs ?? 30_000,
    onRetry:
      options.onRetry ?? ((error, tries) => console.warn(`${error.message} (try ${tries}); trying again`)),
  })
  return { tasks: Object.fromEntries(tasksOf(manifest).map((t) => [t.id, t])), source }
}
