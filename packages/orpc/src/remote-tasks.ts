import type { RetryPolicyInput, StandardSchemaV1, Task } from '@ratchet/core'
import {
  procedureTask,
  type AnyProcedureClient,
  type ProcedureInput,
  type ProcedureOutput,
} from './procedure-task'

/** Dotted paths of the procedures of an app client, e.g. `'email.send'`. */
export type ProcedurePath<T, Prefix extends string = ''> = {
  [K in keyof T & string]: T[K] extends AnyProcedureClient
    ? `${Prefix}${K}`
    : T[K] extends object
      ? ProcedurePath<T[K], `${Prefix}${K}.`>
      : never
}[keyof T & string]

/** The procedure of an app client at a dotted path. */
export type ProcedureAt<T, P extends string> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T
    ? ProcedureAt<T[Head], Rest>
    : never
  : P extends keyof T
    ? T[P]
    : never

export interface RemoteTaskDefinition<TClient> {
  procedure: ProcedurePath<TClient>
  /** @default the key in the definitions object */
  id?: string
  input?: StandardSchemaV1
  description?: string
  timeoutMs?: number
  retry?: RetryPolicyInput
  maxRecoveries?: number
  priority?: number
  deadlineMs?: number
}

export type RemoteTasks<TClient, Defs extends Record<string, RemoteTaskDefinition<TClient>>> = {
  [K in keyof Defs & string]: Task<
    Defs[K]['id'] extends string ? Defs[K]['id'] : K,
    ProcedureInput<ProcedureAt<TClient, Defs[K]['procedure']>>,
    ProcedureInput<ProcedureAt<TClient, Defs[K]['procedure']>>,
    ProcedureOutput<ProcedureAt<TClient, Defs[K]['procedure']>>
  >
}

/**
 * Tasks that call a web app's procedures, declared by configuration (no `run` to write),
 * typed from the app's router through its client:
 *
 * ```ts
 * export const tasks = remoteTasks(shop, {
 *   sendEmail: { procedure: 'email.send', timeoutMs: 10_000, retry: { maxAttempts: 5 } },
 * })
 * ```
 *
 * Each is a {@link procedureTask}. Throws `TypeError` when a path names no procedure.
 */
export function remoteTasks<TClient, const Defs extends Record<string, RemoteTaskDefinition<TClient>>>(
  client: TClient,
  definitions: Defs,
): RemoteTasks<TClient, Defs> {
  const out: Record<string, unknown> = {}
  for (const [key, definition] of Object.entries(definitions)) {
    const { procedure: path, id, ...options } = definition
    let procedure: unknown = client
    for (const part of String(path).split('.')) procedure = (procedure as Record<string, unknown>)[part]
    if (typeof procedure !== 'function')
      throw new TypeError(`remote task "${key}": "${String(path)}" is not a procedure of the app client`)
    out[key] = procedureTask({ ...options, id: id ?? key }, procedure as AnyProcedureClient)
  }
  return out as RemoteTasks<TClient, Defs>
}
