import type { StandardSchemaV1 } from './schema'
import { checkRetentionMs, type RetentionMs } from './retention'
import { resolveRetryPolicy, type RetryPolicyInput } from './retry-policy'
import type { AnyTask, Task, TaskContext, TaskDebounce, TaskSource } from './task-types'

/** Task ids: a letter, then up to 127 of letters, digits, `_`, `.` and `-`. */
export const TASK_ID_PATTERN = /^[A-Za-z][\w.-]{0,127}$/

/** @default 60_000 */
export const DEFAULT_TIMEOUT_MS = 60_000
/** Upper bound of `timeoutMs`: 24 hours. */
export const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000

export interface TaskDefinition<Id extends string, In extends StandardSchemaV1, Out> {
  /** Stable identifier, stored with every execution. Must match {@link TASK_ID_PATTERN}. */
  id: Id
  /** Schema of the input, checked at enqueue (bad input never becomes a row). */
  input: In
  /** Schema of the output, checked when the task returns; a mismatch fails the execution. */
  output?: StandardSchemaV1<Out, Out>
  /** One sentence for `tasks.list` and the docs. */
  description?: string
  /**
   * Time limit of each run in ms (a resume after a wait or a crash starts a fresh one); past it
   * `ctx.signal` aborts and the attempt fails. @default 60_000
   */
  timeoutMs?: number
  /** @default { maxAttempts: 3, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 } } */
  retry?: RetryPolicyInput
  /**
   * How many times in a row a run lost to a crash (its process died, its lease expired) is
   * recovered before the execution ends `failed` with `RECOVERIES_EXHAUSTED`. A lost run is
   * not a failed attempt, so deploys and OOM kills do not use up `maxAttempts`; this bounds a
   * task that takes its own process down. A lost run that recorded progress (a step, wait or
   * child) restarts the count at 1, and a run that ends by itself resets it to 0. `0` fails
   * the execution on its first crash. From 0 to 1000. @default 5
   */
  maxRecoveries?: number
  /** Default priority of its executions; higher runs first. @default 0 */
  priority?: number
  /**
   * Collapses bursts of enqueues: an enqueue whose `key(input)` matches an execution of this
   * task that is queued and has not started yet replaces that execution's input with its own
   * and pushes its start back to `periodMs` from now (but no later than `maxWaitMs` after the
   * burst's first enqueue); every caller gets that one execution's id (`created: false` but
   * the first). So the execution runs once, with the last input, when the key has been quiet
   * for `periodMs`. Enforced by the database (a unique index), on every replica. Enqueues only:
   * a debounced task takes no `idempotencyKey`, `delayMs`, `runAt` or `deadlineMs` on an enqueue,
   * cannot be a child, and cannot be started by events (`on`); a task `deadlineMs` must exceed
   * `maxWaitMs`. `periodMs` from 1 ms to 24 h; `maxWaitMs` from
   * `periodMs` to 24 h. @default none
   */
  debounce?: {
    key: (input: StandardSchemaV1.InferOutput<In>) => string
    periodMs: number
    maxWaitMs?: number
  }
  /** Bound on each execution's whole life (attempts and waits); past it, it ends `timed_out`. @default none */
  deadlineMs?: number
  /**
   * Event types that start this task (`events.publish`): each published event of one of these
   * types enqueues one execution, with the event as its input. @default none
   */
  on?: string | readonly string[]
  /**
   * How long an execution tree whose root is of this task is kept after it finished (with its
   * history, steps, signals and idempotency key), in ms from 1 s to 10 years, or `'forever'`.
   * Overrides the server's retention (`RATCHET_RETENTION_MS`) for these trees; children follow
   * their root's task. @default the server's retention
   */
  retentionMs?: RetentionMs
  /**
   * The task's body. Its return value (JSON-serializable) becomes the execution's output.
   * Failure semantics: a throw fails the attempt; see `RetryPolicy` for what is retried.
   */
  run: (input: StandardSchemaV1.InferOutput<In>, ctx: TaskContext) => Promise<Out> | Out
  /**
   * @internal For task providers (`appFunctions`): the source the task was loaded from, so the
   * engine can load it again. Tasks of a tasks module have none.
   */
  source?: TaskSource
}

/** Event types: like task ids, dots and colons allowed (`order.placed`, `user:signed-up`). */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][\w.:-]{0,127}$/

export const MIN_PRIORITY = -1000
export const MAX_PRIORITY = 1000

/** Recoveries in a row after crashes before an execution fails (see `maxRecoveries`). */
export const DEFAULT_MAX_RECOVERIES = 5
/** Upper bound of `maxRecoveries`. */
export const MAX_RECOVERIES_LIMIT = 1000

/** Whether `value` is a valid `maxRecoveries`: an integer from 0 to MAX_RECOVERIES_LIMIT. */
export function isMaxRecoveries(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_RECOVERIES_LIMIT
}

export function checkPriority(priority: number, where: string): void {
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new TypeError(
      `${where} must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}, got ${String(priority)}`,
    )
  }
}

export function checkTimeoutMs(timeoutMs: number, where: string): void {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new TypeError(
      `${where} must be an integer from 1 to ${MAX_TIMEOUT_MS} ms, got ${String(timeoutMs)}`,
    )
  }
}

/**
 * Defines a task. Throws `TypeError` at definition time when the id, timeout, retry policy,
 * maxRecoveries or priority is invalid, so a bad definition never reaches a running server.
 */
export function task<const Id extends string, In extends StandardSchemaV1, Out>(
  definition: TaskDefinition<Id, In, Out>,
): Task<Id, StandardSchemaV1.InferInput<In>, StandardSchemaV1.InferOutput<In>, Awaited<Out>> {
  const { id } = definition
  if (typeof id !== 'string' || !TASK_ID_PATTERN.test(id)) {
    throw new TypeError(`task id must match ${String(TASK_ID_PATTERN)}, got ${JSON.stringify(id)}`)
  }
  if (!definition.input || typeof definition.input['~standard']?.validate !== 'function') {
    throw new TypeError(`task "${id}": input must be a Standard Schema (e.g. a zod schema)`)
  }
  if (typeof definition.run !== 'function') throw new TypeError(`task "${id}": run must be a function`)
  const timeoutMs = definition.timeoutMs ?? DEFAULT_TIMEOUT_MS
  checkTimeoutMs(timeoutMs, `task "${id}": timeoutMs`)
  const priority = definition.priority ?? 0
  checkPriority(priority, `task "${id}": priority`)
  const maxRecoveries = definition.maxRecoveries ?? DEFAULT_MAX_RECOVERIES
  if (!isMaxRecoveries(maxRecoveries)) {
    throw new TypeError(
      `task "${id}": maxRecoveries must be an integer from 0 to ${MAX_RECOVERIES_LIMIT}, got ${String(maxRecoveries)}`,
    )
  }
  if (
    definition.deadlineMs !== undefined &&
    (!Number.isInteger(definition.deadlineMs) || definition.deadlineMs < 1)
  ) {
    throw new TypeError(
      `task "${id}": deadlineMs must be a positive integer, got ${String(definition.deadlineMs)}`,
    )
  }
  const on =
    definition.on === undefined
      ? []
      : typeof definition.on === 'string'
        ? [definition.on]
        : [...definition.on]
  for (const type of on) {
    if (typeof type !== 'string' || !EVENT_TYPE_PATTERN.test(type))
      throw new TypeError(
        `task "${id}": on must list event types matching ${String(EVENT_TYPE_PATTERN)}, got ${JSON.stringify(type)}`,
      )
  }
  if (definition.retentionMs !== undefined)
    checkRetentionMs(definition.retentionMs, `task "${id}": retentionMs`)
  const debounce = checkDebounce(definition.debounce, `task "${id}": debounce`)
  if (debounce && on.length > 0)
    throw new TypeError(`task "${id}": a debounced task cannot be started by events (on); enqueue it instead`)
  // The deadline runs from the burst's first enqueue, while its start keeps moving: without a
  // bound on the start that leaves it, it could pass before the execution ever runs.
  if (
    debounce &&
    definition.deadlineMs !== undefined &&
    (debounce.maxWaitMs === undefined || definition.deadlineMs <= debounce.maxWaitMs)
  )
    throw new TypeError(
      `task "${id}": deadlineMs of a debounced task must be more than its debounce.maxWaitMs (the latest start), got ${definition.deadlineMs}${debounce.maxWaitMs === undefined ? ' without a maxWaitMs' : ` with maxWaitMs ${debounce.maxWaitMs}`}`,
    )
  return Object.freeze({
    kind: 'ratchet.task',
    retentionMs: definition.retentionMs,
    on: Object.freeze(on),
    id,
    inputSchema: definition.input,
    outputSchema: definition.output,
    description: definition.description,
    timeoutMs,
    retry: resolveRetryPolicy(definition.retry, `task "${id}": retry`),
    maxRecoveries,
    priority,
    deadlineMs: definition.deadlineMs,
    run: definition.run,
    debounce,
    source: definition.source,
  }) as Task<Id, StandardSchemaV1.InferInput<In>, StandardSchemaV1.InferOutput<In>, Awaited<Out>>
}

function checkDebounce<T>(
  debounce: { key: (input: T) => string; periodMs: number; maxWaitMs?: number } | undefined,
  where: string,
): TaskDebounce<T> | undefined {
  if (debounce === undefined) return undefined
  if (typeof debounce !== 'object' || debounce === null)
    throw new TypeError(`${where} must be { key, periodMs, maxWaitMs? }`)
  const { key, periodMs, maxWaitMs } = debounce
  if (typeof key !== 'function')
    throw new TypeError(`${where}.key must be a function of the input that returns a string`)
  if (!Number.isInteger(periodMs) || periodMs < 1 || periodMs > MAX_TIMEOUT_MS)
    throw new TypeError(
      `${where}.periodMs must be an integer from 1 to ${MAX_TIMEOUT_MS}, got ${String(periodMs)}`,
    )
  if (
    maxWaitMs !== undefined &&
    (!Number.isInteger(maxWaitMs) || maxWaitMs < periodMs || maxWaitMs > MAX_TIMEOUT_MS)
  )
    throw new TypeError(
      `${where}.maxWaitMs must be an integer from periodMs (${periodMs}) to ${MAX_TIMEOUT_MS}, got ${String(maxWaitMs)}`,
    )
  return Object.freeze({ key, periodMs, maxWaitMs })
}

export function isTask(value: unknown): value is AnyTask {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'ratchet.task'
}
