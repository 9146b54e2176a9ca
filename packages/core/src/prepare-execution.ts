import { UnknownTaskError, ValidationError, type Issue } from './errors'
import { newExecutionId } from './ids'
import { serializePayload } from './payload'
import type { TaskRegistry } from './registry'
import { MAX_ATTEMPTS_LIMIT } from './retry-policy'
import { describeIssues, validateSchema } from './schema'
import type { NewExecution } from './storage'
import { MAX_PRIORITY, MAX_RECOVERIES_LIMIT, MAX_TIMEOUT_MS, MIN_PRIORITY, isMaxRecoveries } from './task'
import type { AnyTask } from './task-types'

/** Options of one enqueue. Every field is optional; the task's definition gives the defaults. */
export interface EnqueueOptions {
  /** Same (task, key) → the same execution; enqueueing again with other input is a CONFLICT. Max 255 chars. */
  idempotencyKey?: string
  /** Do not start before this many ms from now. Exclusive with `runAt`. @default 0 */
  delayMs?: number
  /** Do not start before this time. Exclusive with `delayMs`. */
  runAt?: Date | number
  /** Higher runs first, from -1000 to 1000. @default the task's priority */
  priority?: number
  /** Time limit of each run of this execution. @default the task's timeoutMs */
  timeoutMs?: number
  /** Total attempts for this execution. @default the task's retry.maxAttempts */
  maxAttempts?: number
  /**
   * Recoveries in a row after crashes before this execution fails, from 0 to 1000 (see the
   * task option). @default the task's maxRecoveries
   */
  maxRecoveries?: number
  /**
   * Bound on the whole execution, across attempts and waits, from now: past it the execution
   * ends `timed_out`. @default the task's deadlineMs (none)
   */
  deadlineMs?: number
}

export interface EnqueueRequest {
  task: string | AnyTask
  input: unknown
  options?: EnqueueOptions
}

/** Links of a child execution to its parent. */
export interface ParentLink {
  parentId: string
  rootId: string
  wakesParent: boolean
  /**
   * The parent's deadline. An awaited child (`wakesParent`) inherits it, or keeps its own if
   * that is sooner: the parent's deadline bounds the work it waits for, so a parent that
   * runs past it takes its children with it. A spawned child is not bound by it.
   */
  deadlineAt?: number | null
}

const MAX_IDEMPOTENCY_KEY_LENGTH = 255
const MAX_DELAY_MS = 10 * 365 * 24 * 60 * 60 * 1000

/**
 * Turns an enqueue request into a row to insert: resolves the task, checks the options and
 * the input against the task's schema, and serializes the input once. Throws
 * `UnknownTaskError`, `ValidationError` (issues name the field) or `PayloadTooLargeError`.
 */
export async function prepareExecution(
  registry: TaskRegistry,
  request: EnqueueRequest,
  now: number,
  maxPayloadBytes: number,
  parent?: ParentLink,
): Promise<NewExecution> {
  const ref = typeof request.task === 'string' ? request.task : request.task.id
  const task = registry.resolveForEnqueue(ref)
  if (!task) throw new UnknownTaskError(ref, registry.enqueueableIds())
  const options = checkEnqueueOptions(request.options ?? {})
  const result = await validateSchema(task.inputSchema, request.input)
  if (!result.ok) {
    throw new ValidationError(
      `invalid input for task "${task.id}": ${describeIssues(result.issues)}`,
      result.issues.map((i) => ({ ...i, path: ['input', ...i.path] })),
    )
  }
  const debounce = task.debounce ? debounceOf(task, result.value, options, parent) : null
  const runAt = debounce
    ? now + task.debounce!.periodMs
    : options.runAt !== undefined
      ? Math.max(now, typeof options.runAt === 'number' ? options.runAt : options.runAt.getTime())
      : now + (options.delayMs ?? 0)
  const deadlineMs = options.deadlineMs ?? task.deadlineMs
  const id = newExecutionId(now)
  const row: NewExecution = {
    id,
    taskId: task.id,
    input: serializePayload(result.value, 'input', maxPayloadBytes),
    maxAttempts: options.maxAttempts ?? task.retry.maxAttempts,
    maxRecoveries: options.maxRecoveries ?? task.maxRecoveries,
    timeoutMs: options.timeoutMs ?? task.timeoutMs,
    backoff: task.retry.backoff,
    priority: options.priority ?? task.priority,
    idempotencyKey: options.idempotencyKey ?? null,
    runAt,
    parentId: parent?.parentId ?? null,
    rootId: parent?.rootId ?? null,
    wakesParent: parent?.wakesParent ?? false,
    deadlineAt: earliest(
      deadlineMs === undefined ? null : now + deadlineMs,
      parent?.wakesParent ? (parent.deadlineAt ?? null) : null,
    ),
  }
  // Set only when there is one: every other enqueue keeps the one object shape.
  if (debounce) row.debounce = debounce
  return row
}

const MAX_DEBOUNCE_KEY_LENGTH = 255

/** The debounce of an enqueue of a debounced task; `ValidationError` for what it does not take. */
function debounceOf(
  task: AnyTask,
  input: unknown,
  options: EnqueueOptions,
  parent: ParentLink | undefined,
): { key: string; maxWaitMs: number | null } {
  const { debounce } = task
  const refuse = (path: (string | number)[], message: string): never => {
    throw new ValidationError(`task "${task.id}" is debounced: ${message}`, [{ path, message }])
  }
  if (parent) refuse([], 'it cannot be started as a child; enqueue it')
  for (const field of ['idempotencyKey', 'delayMs', 'runAt', 'deadlineMs'] as const)
    if (options[field] !== undefined)
      refuse(
        ['options', field],
        `a debounced task takes no ${field} (its debounce key and periods decide when it starts; its deadlineMs is the task's)`,
      )
  let key: unknown
  try {
    key = debounce!.key(input)
  } catch (error) {
    refuse(['input'], `its debounce key function threw: ${(error as Error)?.message ?? String(error)}`)
  }
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_DEBOUNCE_KEY_LENGTH)
    refuse(
      ['input'],
      `its debounce key must be a string of 1 to ${MAX_DEBOUNCE_KEY_LENGTH} characters, got ${JSON.stringify(key)}`,
    )
  return { key: key as string, maxWaitMs: debounce!.maxWaitMs ?? null }
}

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b
  return b === null ? a : Math.min(a, b)
}

function checkEnqueueOptions(options: EnqueueOptions): EnqueueOptions {
  const issues: Issue[] = []
  const bad = (field: string, message: string) => issues.push({ path: ['options', field], message })
  const { idempotencyKey, delayMs, runAt, priority, timeoutMs, maxAttempts, maxRecoveries, deadlineMs } =
    options
  if (
    idempotencyKey !== undefined &&
    (typeof idempotencyKey !== 'string' ||
      idempotencyKey.length === 0 ||
      idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH)
  ) {
    bad('idempotencyKey', `expected a string of 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`)
  }
  if (delayMs !== undefined && (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS)) {
    bad('delayMs', `expected an integer from 0 to ${MAX_DELAY_MS}`)
  }
  if (runAt !== undefined) {
    const ms = typeof runAt === 'number' ? runAt : runAt instanceof Date ? runAt.getTime() : NaN
    if (!Number.isFinite(ms)) bad('runAt', 'expected a valid date')
    if (delayMs !== undefined) bad('runAt', 'give either delayMs or runAt, not both')
  }
  if (
    priority !== undefined &&
    (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY)
  ) {
    bad('priority', `expected an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}`)
  }
  if (
    timeoutMs !== undefined &&
    (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS)
  ) {
    bad('timeoutMs', `expected an integer from 1 to ${MAX_TIMEOUT_MS}`)
  }
  if (
    maxAttempts !== undefined &&
    (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT)
  ) {
    bad('maxAttempts', `expected an integer from 1 to ${MAX_ATTEMPTS_LIMIT}`)
  }
  if (maxRecoveries !== undefined && !isMaxRecoveries(maxRecoveries)) {
    bad('maxRecoveries', `expected an integer from 0 to ${MAX_RECOVERIES_LIMIT}`)
  }
  if (
    deadlineMs !== undefined &&
    (!Number.isInteger(deadlineMs) || deadlineMs < 1 || deadlineMs > MAX_DELAY_MS)
  ) {
    bad('deadlineMs', `expected an integer from 1 to ${MAX_DELAY_MS}`)
  }
  if (issues.length > 0)
    throw new ValidationError(`invalid enqueue options: ${describeIssues(issues)}`, issues)
  return options
}
