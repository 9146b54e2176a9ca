import { task, toJsonSchema, type RetryPolicyInput, type StandardSchemaV1 } from '@ratchet/core'
import type { FunctionContext } from './app-context'
import {
  DEFAULT_MAX_INVOCATION_MS,
  EXECUTION_MODES,
  type ExecutionMode,
  type ManifestFunction,
} from './protocol'

export interface FunctionDefinition<Id extends string, In extends StandardSchemaV1, Out> {
  /** Unique across every task and app function the server knows; as a task id. */
  id: Id
  /**
   * Schema of the input. Its JSON Schema (Standard JSON Schema, which zod 4.2+ implements)
   * goes into the manifest, so Ratchet checks input at enqueue; the app checks it again.
   */
  input: In
  /** Checked when the function returns; a mismatch fails the execution. */
  output?: StandardSchemaV1<Out, Out>
  description?: string
  /** @default 'sequential' */
  mode?: ExecutionMode
  /**
   * The sequential mode's budget per invocation: no new step starts after it, so set it below
   * your platform's limit by at least your longest step. @default 10_000
   */
  maxInvocationMs?: number
  /** Time limit of each invocation (the HTTP call), as a task's `timeoutMs`. @default 60_000 */
  timeoutMs?: number
  retry?: RetryPolicyInput
  maxRecoveries?: number
  priority?: number
  deadlineMs?: number
  run: (input: StandardSchemaV1.InferOutput<In>, ctx: FunctionContext) => Promise<Out> | Out
}

/** A durable function hosted by a web app (see `defineFunction`). */
export interface AppFunction<
  Id extends string = string,
  TInput = unknown,
  TParsed = unknown,
  TOutput = unknown,
> {
  readonly kind: 'ratchet.app-function'
  readonly id: Id
  readonly inputSchema: StandardSchemaV1<TInput, TParsed>
  readonly outputSchema: StandardSchemaV1<TOutput, TOutput> | undefined
  readonly mode: ExecutionMode
  readonly maxInvocationMs: number
  /** What the server learns from the app's manifest. */
  readonly manifest: ManifestFunction
  readonly run: (input: TParsed, ctx: FunctionContext) => Promise<TOutput> | TOutput
  /** Phantom types for `createClient<typeof functions>()` and typed children. */
  readonly '~types'?: { input: TInput; output: TOutput }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a list holds functions of any type
export type AnyAppFunction = AppFunction<string, any, any, any>

/**
 * A durable function that lives in the web app and is driven by Ratchet over signed HTTP: each
 * invocation replays its record and runs new steps (one in `isolated` mode, as many as fit in
 * `maxInvocationMs` in `sequential` mode); durable waits end the invocation and Ratchet resumes
 * it when they are over. Mount it with `createFunctionsHandler`. Throws `TypeError` on a bad id
 * or option, or an input schema with no JSON Schema.
 */
export function defineFunction<const Id extends string, In extends StandardSchemaV1, Out>(
  definition: FunctionDefinition<Id, In, Out>,
): AppFunction<Id, StandardSchemaV1.InferInput<In>, StandardSchemaV1.InferOutput<In>, Out> {
  const { id, description, timeoutMs, retry, maxRecoveries, priority, deadlineMs } = definition
  // The options a task takes are checked by `task()` itself (the server makes one from the
  // manifest): a bad one fails here, in the app, rather than at the server's start-up.
  try {
    task({ ...definition, run: () => undefined })
  } catch (error) {
    throw new TypeError(`defineFunction: ${(error as Error).message}`, { cause: error })
  }
  const where = `defineFunction "${id}"`
  const mode = definition.mode ?? 'sequential'
  if (!EXECUTION_MODES.includes(mode))
    throw new TypeError(`${where}: mode must be ${EXECUTION_MODES.join(' or ')}, got ${JSON.stringify(mode)}`)
  const maxInvocationMs = definition.maxInvocationMs ?? DEFAULT_MAX_INVOCATION_MS
  if (!Number.isFinite(maxInvocationMs) || maxInvocationMs <= 0)
    throw new TypeError(`${where}: maxInvocationMs must be a positive number of ms`)
  const input = toJsonSchema(definition.input, 'input')
  if (!input)
    throw new TypeError(
      `${where}: the input schema has no JSON Schema (use a library implementing Standard JSON Schema, such as zod 4.2+)`,
    )
  const output = toJsonSchema(definition.output, 'output')
  // Undefined options drop out of the manifest's JSON.
  const manifest: ManifestFunction = {
    id,
    mode,
    maxInvocationMs,
    input,
    output,
    description,
    timeoutMs,
    retry,
    maxRecoveries,
    priority,
    deadlineMs,
  }
  return {
    kind: 'ratchet.app-function',
    id,
    inputSchema: definition.input,
    outputSchema: definition.output,
    mode,
    maxInvocationMs,
    manifest,
    run: definition.run,
  }
}
