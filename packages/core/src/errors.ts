/**
 * The error taxonomy of Ratchet. Every error that crosses a boundary (stored on an
 * execution, returned over the API) is normalised once, by {@link serializeError}, into a
 * {@link StoredError}.
 *
 * This file is also the subpath export `@ratchet/core/errors`, which `@ratchet/client` uses so
 * that a client and a task see the same classes (`RatchetError`, `WaitTimeoutError`,
 * `ExecutionFailedError`): it must import nothing, so a browser or edge bundle of the client
 * takes no engine code with it.
 *
 * Retry semantics: an error is retried when attempts remain unless it is a
 * {@link TerminalError}, a {@link ValidationError}, a {@link CancelledError}, or any error
 * whose `retryable` property is `false`. Plain `Error`s and non-Error throws are retryable.
 */

/** An error as it is stored on an execution and returned by the API. */
export interface StoredError {
  name: string
  message: string
  code?: string
  retryable: boolean
  stack?: string
  cause?: StoredError
  /**
   * The fields a Ratchet error class adds (`issues` of a `ValidationError`, `retryAfterMs` of a
   * `RetryableError`, `childId`/`childStatus`/`childError` of a `ChildExecutionError`, ...), so
   * a replayed error carries them too. Absent for other errors.
   */
  data?: Record<string, unknown>
}

/** A validation issue in the shape of Standard Schema, with the path flattened to keys. */
export interface Issue {
  path: (string | number)[]
  message: string
}

/** Base class of every error Ratchet raises on purpose. */
export class RatchetError extends Error {
  /** A stable, machine-readable code (SCREAMING_SNAKE_CASE). */
  readonly code: string
  /** Whether the executor may retry an attempt that failed with this error. */
  readonly retryable: boolean

  constructor(code: string, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retryable = options.retryable
  }

  /**
   * The fields this class adds, as stored with the error (`StoredError.data`) and given back
   * to a replayed instance: by default every own field but the base ones. Override to store
   * less. Must return JSON-safe values.
   */
  storedData(): Record<string, unknown> | undefined {
    let data: Record<string, unknown> | undefined
    for (const key of Object.keys(this)) {
      if (BASE_FIELDS.has(key)) continue
      const value = (this as unknown as Record<string, unknown>)[key]
      if (value !== undefined) (data ??= {})[key] = value
    }
    return data
  }
}

/** Own fields every error has; whatever else a RatchetError holds is its class's data. */
const BASE_FIELDS = new Set(['name', 'message', 'code', 'retryable', 'stack', 'cause'])

/** Thrown by task code to fail the execution at once: never retried. */
export class TerminalError extends RatchetError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(options.code ?? 'TERMINAL', message, { retryable: false, cause: options.cause })
  }
}

/**
 * Thrown by task code to ask for a retry, optionally after a given delay instead of the
 * task's back-off. Still bounded by `maxAttempts`.
 */
export class RetryableError extends RatchetError {
  /** Wait this long before the next attempt instead of the computed back-off. */
  readonly retryAfterMs: number | undefined

  constructor(message: string, options: { retryAfterMs?: number; code?: string; cause?: unknown } = {}) {
    super(options.code ?? 'RETRYABLE', message, { retryable: true, cause: options.cause })
    this.retryAfterMs = options.retryAfterMs
  }
}

/** An attempt ran past its `timeoutMs`. Retryable: the execution ends `timed_out` when attempts run out. */
export class TimeoutError extends RatchetError {
  constructor(message: string) {
    super('TIMEOUT', message, { retryable: true })
  }
}

/** The execution ran past its `deadlineMs`: it ends `timed_out`. Never retried. */
export class DeadlineExceededError extends RatchetError {
  constructor(message: string) {
    super('DEADLINE_EXCEEDED', message, { retryable: false })
  }
}

/** The execution was cancelled. Never retried. */
export class CancelledError extends RatchetError {
  constructor(message = 'execution was cancelled', code = 'CANCELLED') {
    super(code, message, { retryable: false })
  }
}

/**
 * The execution was cancelled because one above it ended first: a parent that completed,
 * failed or timed out while awaiting it, or an ancestor that was cancelled. Never retried;
 * `executions.retry` of that ancestor runs such descendants again.
 */
export class ParentEndedError extends CancelledError {
  constructor(message = 'its parent execution ended before this child finished') {
    super(message, 'PARENT_ENDED')
  }
}

/** The process is shutting down; the attempt is released and runs again later. */
export class ShutdownError extends RatchetError {
  constructor(message = 'worker shut down before the attempt finished') {
    super('SHUTDOWN', message, { retryable: true })
  }
}

/**
/**
 * The reason `ctx.signal` aborts when the execution parks on a durable wait: the run is dropped
 * (the next run replays it from the top), so code still in flight outside a step (a fetch
 * started between steps, a timer) is told to stop. Never stored as the execution's error: a
 * park is not a failure, and whatever the dropped run does after it is discarded.
 */
export class SuspendedError extends RatchetError {
  constructor(message = 'the execution parked on a durable wait; this run is dropped and will be replayed') {
    super('SUSPENDED', message, { retryable: false })
  }
}

/**
 * The worker holding a run's lease stopped heartbeating (its process died, or it stalled past
 * the lease). The run is lost and recovered; this is not a failed attempt (see
 * {@link RecoveriesExhaustedError} for what bounds it).
 */
export class LeaseExpiredError extends RatchetError {
  constructor(message = 'the lease of the run expired (its worker crashed or stalled)') {
    super('LEASE_EXPIRED', message, { retryable: true })
  }
}

/**
 * The database cannot be reached right now (connection refused or lost, the server shutting
 * down or restarting). Retryable: every storage call is one transaction, so nothing of it was
 * written, or, when the connection was lost during the COMMIT itself, all of it; either way
 * the same call may be made again later (enqueues with an idempotency key, and every fenced
 * write, come out the same). The server answers it with 503.
 */
export class StorageUnavailableError extends RatchetError {
  constructor(
    message = 'the database is unreachable; nothing was written, retry later',
    options: { cause?: unknown } = {},
  ) {
    super('STORAGE_UNAVAILABLE', message, { retryable: true, ...options })
  }
}

/**
 * An execution lost more runs in a row to crashes than its `maxRecoveries` allows, without
 * recording progress in between: most likely its own code takes its process down (runs out
 * of memory, exits, crashes a native module). It ends `failed`; never retried by itself.
 */
export class RecoveriesExhaustedError extends RatchetError {
  readonly maxRecoveries: number

  constructor(maxRecoveries: number) {
    super(
      'RECOVERIES_EXHAUSTED',
      `the execution lost ${maxRecoveries + 1} runs in a row to a crash of its worker (process died or lease ` +
        `expired) with no progress in between, more than its maxRecoveries (${maxRecoveries}) allows; it is ` +
        'probably crashing its process. If the crashes are not its doing (deploys, OOM kills of a busy server), ' +
        'raise maxRecoveries on the task or at enqueue, then retry it',
      { retryable: false },
    )
    this.maxRecoveries = maxRecoveries
  }
}

/** Input or output did not match its schema, or an option was invalid. Never retried. */
export class ValidationError extends RatchetError {
  readonly issues: Issue[]

  constructor(message: string, issues: Issue[], code = 'INVALID_INPUT') {
    super(code, message, { retryable: false })
    this.issues = issues
  }
}

/** No task with this id (or key) is registered. */
export class UnknownTaskError extends RatchetError {
  readonly taskId: string
  readonly knownTaskIds: string[]

  constructor(taskId: string, knownTaskIds: string[]) {
    super(
      'UNKNOWN_TASK',
      `unknown task "${taskId}"; registered tasks: ${knownTaskIds.join(', ') || '(none)'}`,
      {
        retryable: false,
      },
    )
    this.taskId = taskId
    this.knownTaskIds = knownTaskIds
  }
}

/** No execution with this id exists (or, with `wakeupKey`, no wait with this wake-up key). */
export class NotFoundError extends RatchetError {
  /** The execution id that matched nothing. */
  readonly executionId: string | undefined
  /** The wake-up key that matched nothing. */
  readonly wakeupKey: string | undefined

  constructor(message: string, options: { executionId?: string; wakeupKey?: string } = {}) {
    super('NOT_FOUND', message, { retryable: false })
    this.executionId = options.executionId
    this.wakeupKey = options.wakeupKey
  }
}

/**
 * The request conflicts with the current state: an idempotency key reused with another input,
 * cancelling or retrying an execution whose status does not allow it, signalling or waking one
 * that ended. `executionId` and `status` name the execution in the way, when there is one.
 */
export class ConflictError extends RatchetError {
  readonly executionId: string | undefined
  readonly status: string | undefined

  constructor(message: string, options: { executionId?: string; status?: string } = {}) {
    super('CONFLICT', message, { retryable: false })
    this.executionId = options.executionId
    this.status = options.status
  }
}

/** A payload (input, output, ...) is larger than the configured limit. Never retried. */
export class PayloadTooLargeError extends RatchetError {
  readonly field: string
  readonly sizeBytes: number
  readonly limitBytes: number

  constructor(field: string, sizeBytes: number, limitBytes: number) {
    super('PAYLOAD_TOO_LARGE', `${field} is ${sizeBytes} bytes, above the limit of ${limitBytes} bytes`, {
      retryable: false,
    })
    this.field = field
    this.sizeBytes = sizeBytes
    this.limitBytes = limitBytes
  }
}

/**
 * A resumed run asked for its steps in another order than the record, or for a name it had
 * used at another position. The code changed under a running execution, or depends on
 * something other than its input and step results. Never retried.
 */
export class NonDeterminismError extends RatchetError {
  constructor(message: string) {
    super('NON_DETERMINISTIC_REPLAY', message, { retryable: false })
  }
}

/** One step or wait name used twice in one execution. Never retried. */
export class DuplicateStepError extends RatchetError {
  constructor(name: string) {
    super(
      'DUPLICATE_STEP',
      `step name "${name}" is used twice in this execution; step and wait names must be unique`,
      {
        retryable: false,
      },
    )
  }
}

/**
 * A wait that gave up after its `timeoutMs`. Inside a task: a `ctx.waitForSignal` or
 * `ctx.waitForWakeup` (catch it inside `run` to carry on). In `@ratchet/client`:
 * `executions.wait` or a handle's `run` (the execution goes on; `execution` is its last state
 * seen, `undefined` when none was). Never retried.
 */
export class WaitTimeoutError<TExecution = unknown> extends RatchetError {
  /** The execution waited for (client side). */
  readonly executionId: string | undefined
  /** The execution as last seen before the wait gave up (client side). */
  readonly execution: TExecution | undefined
  /** How long the wait lasted (client side). */
  readonly timeoutMs: number | undefined

  constructor(
    message: string,
    options: { executionId?: string; execution?: TExecution; timeoutMs?: number } = {},
  ) {
    super('WAIT_TIMEOUT', message, { retryable: false })
    this.executionId = options.executionId
    this.execution = options.execution
    this.timeoutMs = options.timeoutMs
  }

  /** Not the execution: a stored copy would be stale, and may be large. */
  override storedData(): Record<string, unknown> | undefined {
    if (this.executionId === undefined && this.timeoutMs === undefined) return undefined
    return { executionId: this.executionId, timeoutMs: this.timeoutMs }
  }
}

/** What {@link ExecutionFailedError} needs of an execution: the engine's and the API's both fit. */
export interface FailedExecution {
  id: string
  taskId: string
  status: string
  error: { message: string } | null
}

/**
 * An execution ended without completing (failed, timed out or was cancelled) where its output
 * was awaited: a client handle's `run`, `@dispatchAwait` through an executor. `execution` is
 * its final state and `error` its stored error. Never retried.
 */
export class ExecutionFailedError<TExecution extends FailedExecution = FailedExecution> extends RatchetError {
  readonly executionId: string
  readonly status: TExecution['status']
  readonly error: TExecution['error']
  readonly execution: TExecution

  constructor(execution: TExecution) {
    super(
      'EXECUTION_FAILED',
      `execution ${execution.id} of task "${execution.taskId}" ended ${execution.status}` +
        (execution.error ? `: ${execution.error.message}` : ''),
      { retryable: false },
    )
    this.executionId = execution.id
    this.status = execution.status
    this.error = execution.error
    this.execution = execution
  }

  /** The execution's id, status and error; not the whole execution (its input and output). */
  override storedData(): Record<string, unknown> {
    return { executionId: this.executionId, status: this.status, error: this.error }
  }
}

/**
 * A child execution ended without output (failed, cancelled, timed out); `ctx.child` rejects
 * with it. Not retryable by default: the child's end is recorded, so a retry would see it again.
 */
export class ChildExecutionError extends RatchetError {
  readonly childId: string
  readonly childStatus: string
  readonly childError: StoredError | null

  constructor(childId: string, childStatus: string, childError: StoredError | null) {
    super(
      childError?.code ?? 'CHILD_FAILED',
      `child execution ${childId} ended ${childStatus}${childError ? `: ${childError.message}` : ''}`,
      { retryable: false },
    )
    this.childId = childId
    this.childStatus = childStatus
    this.childError = childError
  }

  /**
   * The child's error without its stack, cause and data: in a deep tree each level would
   * otherwise carry every level below it. The child's own record keeps the whole error.
   */
  override storedData(): Record<string, unknown> {
    const e = this.childError
    return {
      childId: this.childId,
      childStatus: this.childStatus,
      childError:
        e === null
          ? null
          : {
              name: e.name,
              message: e.message,
              retryable: e.retryable,
              ...(e.code !== undefined ? { code: e.code } : {}),
            },
    }
  }
}

/**
 * Ratchet's own error classes, by name: a replayed error is an instance of the class the
 * first run threw, so `catch (e) { if (e instanceof WaitTimeoutError) … }` takes the same
 * branch on every replay, and it has the fields the class adds (kept in `StoredError.data`).
 */
const ERROR_CLASSES: Readonly<Record<string, { prototype: RatchetError }>> = {
  RatchetError,
  TerminalError,
  RetryableError,
  TimeoutError,
  DeadlineExceededError,
  CancelledError,
  ParentEndedError,
  ShutdownError,
  SuspendedError,
  LeaseExpiredError,
  RecoveriesExhaustedError,
  StorageUnavailableError,
  ValidationError,
  UnknownTaskError,
  NotFoundError,
  ConflictError,
  PayloadTooLargeError,
  NonDeterminismError,
  DuplicateStepError,
  WaitTimeoutError,
  ExecutionFailedError,
  ChildExecutionError,
}

/** The key of `StoredError.data` naming the nearest Ratchet class of a user's subclass. */
const CLASS_KEY = '$class'

/**
 * Rebuilds a throwable error from a stored one (a recorded step failure) as the first run saw
 * it: name, message, code, retryability, stack, cause (rebuilt the same way) and, for one of
 * Ratchet's error classes, an instance of that class with its fields. Any other error comes
 * back as a plain `Error` with that name (and `code` when it had one).
 */
export function deserializeError(stored: StoredError, depth = 0): Error {
  // A user's subclass of a Ratchet class comes back as that Ratchet class (with its name).
  const className = Object.hasOwn(ERROR_CLASSES, stored.name)
    ? stored.name
    : (stored.data?.[CLASS_KEY] as string | undefined)
  const known =
    className !== undefined && Object.hasOwn(ERROR_CLASSES, className) ? ERROR_CLASSES[className] : undefined
  const cause =
    stored.cause !== undefined && depth < MAX_CAUSE_DEPTH
      ? { cause: deserializeError(stored.cause, depth + 1) }
      : undefined
  let error: Error
  if (known || stored.name === 'RatchetError') {
    error = new RatchetError(stored.code ?? 'ERROR', stored.message, {
      retryable: stored.retryable,
      ...(cause ?? {}),
    })
    if (known) Object.setPrototypeOf(error, known.prototype)
    if (stored.data) {
      for (const [key, value] of Object.entries(stored.data))
        if (!BASE_FIELDS.has(key) && key !== CLASS_KEY) Object.assign(error, { [key]: value })
    }
    if (error instanceof ValidationError && !Array.isArray(error.issues)) Object.assign(error, { issues: [] })
  } else {
    error = new Error(stored.message, cause)
    if (stored.code !== undefined) Object.assign(error, { code: stored.code })
    // isRetryable reads this: a replayed error decides retries as the original did.
    if (!stored.retryable) Object.assign(error, { retryable: false })
  }
  error.name = stored.name
  if (stored.stack !== undefined) error.stack = stored.stack
  return error
}

const MAX_CAUSE_DEPTH = 5
const MAX_MESSAGE_CHARS = 8 * 1024
const MAX_STACK_CHARS = 16 * 1024

const truncate = (text: string, max: number) =>
  text.length > max ? `${text.slice(0, max)}… (truncated)` : text

/**
 * Normalises anything thrown into a {@link StoredError}. Never throws. Non-Error values
 * become `{ name: 'NonError', message: String(value) }`; causes are followed up to 5 deep.
 */
export function serializeError(error: unknown, depth = 0): StoredError {
  if (error instanceof Error) {
    const stored: StoredError = {
      name: error.name,
      message: truncate(error.message, MAX_MESSAGE_CHARS),
      retryable: isRetryable(error),
    }
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string') stored.code = code
    if (error.stack !== undefined) stored.stack = truncate(error.stack, MAX_STACK_CHARS)
    if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH)
      stored.cause = serializeError(error.cause, depth + 1)
    if (error instanceof RatchetError) {
      const data = classData(error)
      if (data) stored.data = data
    }
    return stored
  }
  let message: string
  try {
    message = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error))
  } catch {
    message = String(error)
  }
  return { name: 'NonError', message: truncate(message, MAX_MESSAGE_CHARS), retryable: true }
}

const MAX_DATA_CHARS = 64 * 1024

/**
 * The fields a RatchetError subclass adds (see `storedData`), as JSON, plus the nearest
 * Ratchet class of a user's subclass; nothing when they are not JSON or too large.
 */
function classData(error: RatchetError): Record<string, unknown> | undefined {
  let data: Record<string, unknown> | undefined
  try {
    data = error.storedData()
  } catch {
    data = undefined
  }
  if (!Object.hasOwn(ERROR_CLASSES, error.name)) {
    const base = nearestRatchetClass(error)
    if (base !== undefined) data = { ...data, [CLASS_KEY]: base }
  }
  if (!data) return undefined
  try {
    const json = JSON.stringify(data)
    return json.length <= MAX_DATA_CHARS ? (JSON.parse(json) as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The name of the first of Ratchet's own classes up the prototype chain of `error`. */
function nearestRatchetClass(error: RatchetError): string | undefined {
  for (let proto: unknown = Object.getPrototypeOf(error); proto; proto = Object.getPrototypeOf(proto)) {
    const ctor = (proto as { constructor?: { name?: string } }).constructor
    const name = ctor?.name
    if (name !== undefined && Object.hasOwn(ERROR_CLASSES, name) && ERROR_CLASSES[name]!.prototype === proto)
      return name
  }
  return undefined
}

/** Whether an attempt that threw `error` may be retried (when attempts remain). */
export function isRetryable(error: unknown): boolean {
  if (error instanceof RatchetError) return error.retryable
  if (error instanceof Error && (error as { retryable?: unknown }).retryable === false) return false
  return true
}
