import {
  DuplicateStepError,
  NonDeterminismError,
  PATCH_PREFIX,
  ValidationError,
  checkStepName,
  replayMismatch,
  deserializeError,
  describeIssues,
  isRetryable,
  serializeError,
  validateSchema,
  type ChildOptions,
  type StandardSchemaV1,
  type StepKind,
} from '@ratchet/core'
import type { ExecutionMode, InvokeResult, NewOp, RecordEntry } from './protocol'

/** A task or app function a child call names: its id, or anything with an `id` (typed output). */
export type ChildTarget = string | { readonly id: string }
type OutputOfTarget<T> = T extends { readonly '~types'?: { output: infer O } } ? O : unknown
type InputOfTarget<T> = T extends { readonly '~types'?: { input: infer I } } ? I : unknown

/**
 * What an app-hosted function's body receives: the durable calls of a server-side task's
 * context, run in the app and recorded by Ratchet. Code between calls re-runs on every
 * invocation (each one replays the record from the top), so keep side effects inside steps.
 */
export interface FunctionContext {
  readonly executionId: string
  /** 1-based: failed attempts so far + 1. */
  readonly attempt: number
  /** Aborts when Ratchet cancels the execution, the invocation times out, or it ends. */
  readonly signal: AbortSignal
  /**
   * Runs `fn` once per execution and records its JSON value. A `TerminalError` (or any error
   * that is not retryable) is recorded and thrown here on every replay; any other error fails
   * the attempt, which is retried with the function's back-off.
   */
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>
  /**
   * Safe deploys, as a server task's `ctx.patched`: `true` for executions that reach this
   * point under the new code (recorded as a step `patched:<changeId>`), `false` for executions
   * recorded under the old code, which keep replaying the old path. Await it before the next call.
   */
  patched(changeId: string): Promise<boolean>
  sleep(name: string, ms: number): Promise<void>
  sleepUntil(name: string, until: Date | number): Promise<void>
  /** The first signal of that name sent to the execution (`signal` to name another). */
  waitForSignal<T = unknown>(
    name: string,
    options?: { timeoutMs?: number; signal?: string; schema?: StandardSchemaV1<unknown, T> },
  ): Promise<T>
  waitForWakeup<T = unknown>(name: string, options: { key: string; timeoutMs?: number }): Promise<T>
  /** A child execution of a server task or an app function, started once; resolves with its output. */
  child<T extends ChildTarget>(
    name: string,
    task: T,
    input: InputOfTarget<T>,
    options?: ChildOptions,
  ): Promise<OutputOfTarget<T>>
  spawn(
    name: string,
    task: ChildTarget,
    input: unknown,
    options?: ChildOptions,
  ): Promise<{ executionId: string }>
  all<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }>
  allSettled<T extends readonly unknown[]>(
    promises: T,
  ): Promise<{ -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>> }>
}

export interface InvocationOptions {
  executionId: string
  attempt: number
  record: readonly RecordEntry[]
  mode: ExecutionMode
  budgetMs: number
  /** Aborts the function's `ctx.signal` (the request's signal: a cancel from Ratchet). */
  signal: AbortSignal
  /**
   * Called with each new step or wait as soon as it and every one before it are decided, in
   * position order, until the invocation ends: the answer streams them to Ratchet.
   */
  onOp: (op: NewOp) => void
  now?: () => number
}

const never = <T>(): Promise<T> => new Promise<T>(() => {})

/**
 * One invocation of an app-hosted function: replays the record, starts what the mode allows,
 * and collects the new steps and waits (contiguous from the end of the record) until the
 * function returns, throws, or has nothing left but calls that cannot go on in this invocation.
 */
export class Invocation implements FunctionContext {
  readonly executionId: string
  readonly attempt: number
  readonly signal: AbortSignal
  private readonly controller = new AbortController()
  private readonly record: readonly RecordEntry[]
  // Where the record has each name: the order check looks every call up in it.
  private readonly recordedAt: Map<string, number>
  private readonly names = new Set<string>()
  private readonly now: () => number
  private readonly deadline: number
  private nextPosition = 0
  // New ops by position - record.length; a hole is a call in flight. Handed to `onOp` up to
  // the first hole.
  private readonly ops: (NewOp | undefined)[] = []
  private emitted = 0
  private newSteps = 0
  // Once a new call could not start, no later one may: the ops must stay contiguous.
  private stopped = false
  private running = 0
  private blocked = 0
  private endCheckScheduled = false
  private poisoned: Error | undefined
  private end: ((result: InvokeResult) => void) | undefined

  constructor(private readonly options: InvocationOptions) {
    this.executionId = options.executionId
    this.attempt = options.attempt
    this.record = options.record
    this.recordedAt = new Map(options.record.map((entry, position) => [entry.name, position]))
    this.now = options.now ?? Date.now
    this.deadline = this.now() + options.budgetMs
    this.signal = AbortSignal.any([options.signal, this.controller.signal])
  }

  /**
   * Runs `body` and resolves with how the invocation ended, the new ops having gone to `onOp`.
   * Never rejects: a throw is the result `failed`. A step still running when it ends (a hole)
   * is not reported, nor is anything after it.
   */
  async run(body: (ctx: FunctionContext) => Promise<unknown>): Promise<InvokeResult> {
    const result = await new Promise<InvokeResult>((resolve) => {
      this.end = resolve
      body(this).then(
        (output) => this.finish({ status: 'completed', output }),
        (error: unknown) => this.finish({ status: 'failed', error: serializeError(error) }),
      )
    })
    this.controller.abort(new Error('the invocation ended'))
    return result
  }

  /** Records the op at `position` and hands on every op now decided, in order. */
  private put(position: number, op: NewOp): void {
    this.ops[position - this.record.length] = op
    if (!this.end) return // ended: nothing more is reported
    for (let next = this.ops[this.emitted]; next; next = this.ops[this.emitted]) {
      this.emitted++
      this.options.onOp(next)
    }
  }

  private finish(result: InvokeResult): void {
    const end = this.end
    if (!end) return
    this.end = undefined
    end(this.poisoned ? { status: 'failed', error: serializeError(this.poisoned) } : result)
  }

  /** Takes the next position and checks it against the record. */
  private take(name: string, kind: StepKind): { position: number; entry: RecordEntry | undefined } {
    checkStepName(name)
    if (this.names.has(name)) throw this.poison(new DuplicateStepError(name))
    this.names.add(name)
    const position = this.nextPosition++
    const entry = this.record[position]
    const problem = replayMismatch(entry, this.recordedAt.get(name), position, name, kind)
    if (problem) throw this.poison(new NonDeterminismError(problem))
    return { position, entry }
  }

  /** `take`, with a bad or duplicate name as the call's rejection rather than a throw. */
  private takeOrReject(name: string, kind: StepKind): ReturnType<Invocation['take']> | Promise<never> {
    try {
      return this.take(name, kind)
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)))
    }
  }

  private poison(error: Error): Error {
    this.poisoned ??= error
    this.finish({ status: 'failed', error: serializeError(error) })
    return error
  }

  /** A recorded entry's outcome, or a call that blocks while it waits. */
  private replay<T>(entry: RecordEntry): Promise<T> {
    if (entry.status === 'done') return Promise.resolve(entry.value as T)
    if (entry.status === 'failed')
      return Promise.reject(
        deserializeError(entry.error ?? { name: 'Error', message: 'failed', retryable: false }),
      )
    return this.block<T>()
  }

  private block<T>(): Promise<T> {
    this.blocked++
    this.settleLater()
    return never<T>()
  }

  /**
   * The invocation ends once nothing runs but blocked calls, checked after this turn so that
   * calls made together (`ctx.all`) are all made first. `yield` when the mode's limit held a
   * call back, `blocked` when only waits are left.
   */
  private settleLater(): void {
    if (this.endCheckScheduled) return
    this.endCheckScheduled = true
    setTimeout(() => {
      this.endCheckScheduled = false
      if (!this.end || this.running > 0 || this.blocked === 0) return
      this.finish({ status: this.stopped ? 'yield' : 'blocked' })
    }, 0)
  }

  /** Whether a new step may start now, by the mode's rule. */
  private mayStartStep(): boolean {
    if (this.stopped || this.poisoned) return false
    const allowed = this.options.mode === 'isolated' ? this.newSteps === 0 : this.now() < this.deadline
    if (!allowed) this.stopped = true
    return allowed
  }

  step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const taken = this.takeOrReject(name, 'step')
    if (taken instanceof Promise) return taken
    if (taken.entry) return this.replay<T>(taken.entry)
    if (!this.mayStartStep()) return this.block<T>()
    this.newSteps++
    this.running++
    const { position } = taken
    return (async () => {
      try {
        const value = await fn()
        const json = JSON.stringify(value) as string | undefined
        const parsed = json === undefined ? undefined : (JSON.parse(json) as T)
        this.put(
          position,
          parsed === undefined
            ? { kind: 'step', name, status: 'done' }
            : { kind: 'step', name, status: 'done', value: parsed },
        )
        return parsed as T
      } catch (error) {
        if (isRetryable(error)) {
          // Not recorded: the attempt fails and is retried with the function's back-off.
          this.poison(error instanceof Error ? error : new Error(String(error)))
        } else {
          this.put(position, { kind: 'step', name, status: 'failed', error: serializeError(error) })
        }
        throw error
      } finally {
        this.running--
        this.settleLater()
      }
    })()
  }

  patched(changeId: string): Promise<boolean> {
    const name = `${PATCH_PREFIX}${changeId}`
    const entry = this.record[this.nextPosition]
    // Recorded by the code before the change: the old path, at this same position.
    if (entry && entry.name !== name && !this.recordedAt.has(name)) return Promise.resolve(false)
    const taken = this.takeOrReject(name, 'step')
    if (taken instanceof Promise) return taken
    if (taken.entry) return this.replay<boolean>(taken.entry)
    // A marker, not a step: it does not count against the isolated mode's one step.
    if (this.stopped || this.poisoned) return this.block<boolean>()
    this.put(taken.position, { kind: 'step', name, status: 'done', value: true })
    return Promise.resolve(true)
  }

  /** A wait: replayed when recorded, else asked of Ratchet (when calls may still start) and blocked. */
  private wait<T>(name: string, kind: StepKind, op: () => NewOp): Promise<T> {
    const taken = this.takeOrReject(name, kind)
    if (taken instanceof Promise) return taken
    if (taken.entry) return this.replay<T>(taken.entry)
    if (this.stopped || this.poisoned) return this.block<T>()
    this.put(taken.position, op())
    return this.block<T>()
  }

  sleep(name: string, ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0)
      return Promise.reject(
        new TypeError(`ctx.sleep("${name}"): ms must be a number >= 0, got ${String(ms)}`),
      )
    return this.wait(name, 'sleep', () => ({ kind: 'sleep', name, ms }))
  }

  sleepUntil(name: string, until: Date | number): Promise<void> {
    const at = typeof until === 'number' ? until : until.getTime()
    if (!Number.isFinite(at))
      return Promise.reject(new TypeError(`ctx.sleepUntil("${name}"): expected a valid date`))
    return this.wait(name, 'sleep', () => ({ kind: 'sleep', name, until: at }))
  }

  async waitForSignal<T = unknown>(
    name: string,
    options: { timeoutMs?: number; signal?: string; schema?: StandardSchemaV1<unknown, T> } = {},
  ): Promise<T> {
    const payload = await this.wait<unknown>(name, 'signal', () => ({
      kind: 'signal',
      name,
      signal: options.signal ?? name,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    }))
    if (!options.schema) return payload as T
    // The recorded payload is the same on every replay, so this check is too.
    const checked = await validateSchema(options.schema, payload)
    if (checked.ok) return checked.value
    throw new ValidationError(
      `signal "${options.signal ?? name}" does not match the schema of wait "${name}": ${describeIssues(checked.issues)}`,
      checked.issues,
      'INVALID_SIGNAL',
    )
  }

  waitForWakeup<T = unknown>(name: string, options: { key: string; timeoutMs?: number }): Promise<T> {
    return this.wait<T>(name, 'wakeup', () => ({
      kind: 'wakeup',
      name,
      key: options.key,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    }))
  }

  child<T extends ChildTarget>(
    name: string,
    task: T,
    input: InputOfTarget<T>,
    options?: ChildOptions,
  ): Promise<OutputOfTarget<T>> {
    return this.wait(name, 'child', () => childOp('child', name, task, input, options))
  }

  spawn(
    name: string,
    task: ChildTarget,
    input: unknown,
    options?: ChildOptions,
  ): Promise<{ executionId: string }> {
    return this.wait(name, 'spawn', () => childOp('spawn', name, task, input, options))
  }

  all<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
    return Promise.all(promises)
  }

  allSettled<T extends readonly unknown[]>(
    promises: T,
  ): Promise<{ -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>> }> {
    return Promise.allSettled(promises)
  }
}

function childOp(
  kind: 'child' | 'spawn',
  name: string,
  task: ChildTarget,
  input: unknown,
  options: ChildOptions | undefined,
): NewOp {
  return {
    kind,
    name,
    task: typeof task === 'string' ? task : task.id,
    input,
    ...(options ? { options } : {}),
  }
}
