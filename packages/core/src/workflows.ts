import { TerminalError, serializeError, type StoredError } from './errors'
import type { RetryPolicyInput } from './retry-policy'
import type { StandardSchemaV1 } from './schema'
import { task } from './task'
import type { AnyTask, ChildOptions, InputOf, OutputOf, Task, TaskContext } from './task-types'

/**
 * Workflow shapes built on durable steps and children. Each returns an ordinary task: export
 * it in your tasks object with the tasks it uses (children are enqueued by task id, so they
 * must be registered on the same server).
 */

interface WorkflowOptions {
  /** Time limit of each of the workflow's own runs. @default 60_000 */
  timeoutMs?: number
  retry?: RetryPolicyInput
  /** Bound on the whole workflow, waits included. */
  deadlineMs?: number
  description?: string
}

/** The task options a workflow passes through, leaving out the ones not given. */
function taskOptions(options: WorkflowOptions): WorkflowOptions {
  const picked: WorkflowOptions = {}
  if (options.timeoutMs !== undefined) picked.timeoutMs = options.timeoutMs
  if (options.retry !== undefined) picked.retry = options.retry
  if (options.deadlineMs !== undefined) picked.deadlineMs = options.deadlineMs
  if (options.description !== undefined) picked.description = options.description
  return picked
}

type Last<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : never

/** `T` when each task's output is assignable to the next one's input, else a message type. */
type Chain<T extends readonly AnyTask[]> = T extends readonly [
  infer A,
  infer B extends AnyTask,
  ...infer Rest extends AnyTask[],
]
  ? [OutputOf<A>] extends [InputOf<B>]
    ? readonly [A, ...Chain<readonly [B, ...Rest]>]
    : readonly [
        A,
        `the output of "${A extends AnyTask ? A['id'] : ''}" does not fit the input of the next task`,
      ]
  : T

/**
 * A task that runs `tasks` one after the other as children, each output being the next
 * input (checked by the type system; at run time by each task's input schema). Its input is
 * the first task's, its output the last one's. A child that fails fails the sequence.
 */
export function sequence<const Id extends string, const T extends readonly [AnyTask, ...AnyTask[]]>(
  id: Id,
  tasks: T & Chain<T>,
  options: WorkflowOptions = {},
): Task<Id, InputOf<T[0]>, InputOf<T[0]>, OutputOf<Last<T>>> {
  const steps = tasks as readonly AnyTask[]
  const first = steps[0]!
  return task({
    id,
    description: options.description ?? `sequence of ${steps.map((t) => t.id).join(' → ')}`,
    input: first.inputSchema as StandardSchemaV1<InputOf<T[0]>, InputOf<T[0]>>,
    ...taskOptions(options),
    run: async (input, ctx) => {
      let value: unknown = input
      for (const [index, step] of steps.entries()) {
        value = await ctx.child(`${index + 1}-${step.id}`, step.id, value)
      }
      return value as OutputOf<Last<T>>
    },
  })
}

/** What one iteration of a loop decided. */
export type LoopResult<T> = { done: true; value: T } | { done: false }

export interface LoopOptions<In extends StandardSchemaV1> extends WorkflowOptions {
  input: In
  /** Most iterations before the loop fails with `LOOP_EXHAUSTED`. */
  maxAttempts: number
  /** Pause between iterations, in ms, or a function of the iteration just done (1-based). */
  sleepMs: number | ((iteration: number) => number)
  /**
   * Continue as new (`ctx.continueAsNew`, with the same input) after every this many
   * iterations, so the execution's record and history stay bounded however long it loops.
   * Iteration numbers keep counting across generations. The loop's input schema must accept
   * its own parsed input (it is validated again at each continue). @default never
   */
  continueAsNewEvery?: number
}

/**
 * A polling task: runs `iteration` as a step until it returns `{ done: true, value }`,
 * sleeping durably between iterations (the worker slot is free while it sleeps). Each
 * iteration is recorded, so a crash resumes at the next one; with `continueAsNewEvery` the
 * record is started afresh every that many iterations. After `maxAttempts`
 * iterations without `done` it fails with a `TerminalError` (code `LOOP_EXHAUSTED`).
 */
export function loop<const Id extends string, In extends StandardSchemaV1, T>(
  id: Id,
  iteration: (
    input: StandardSchemaV1.InferOutput<In>,
    info: { iteration: number; ctx: TaskContext },
  ) => Promise<LoopResult<T>> | LoopResult<T>,
  options: LoopOptions<In>,
): Task<Id, StandardSchemaV1.InferInput<In>, StandardSchemaV1.InferOutput<In>, T> {
  if (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1) {
    throw new TypeError(
      `loop "${id}": maxAttempts must be a positive integer, got ${String(options.maxAttempts)}`,
    )
  }
  const every = options.continueAsNewEvery
  if (every !== undefined && (!Number.isInteger(every) || every < 1)) {
    throw new TypeError(`loop "${id}": continueAsNewEvery must be a positive integer, got ${String(every)}`)
  }
  const pause = (i: number) => (typeof options.sleepMs === 'function' ? options.sleepMs(i) : options.sleepMs)
  return task({
    id,
    input: options.input,
    ...taskOptions(options),
    run: async (input, ctx): Promise<T> => {
      // Each generation runs the next `every` iterations; their numbers go on counting.
      const first = every === undefined ? 1 : ctx.generation * every + 1
      const last =
        every === undefined ? options.maxAttempts : Math.min(options.maxAttempts, first + every - 1)
      for (let i = first; i <= last; i++) {
        const result = await ctx.step(`iteration-${i}`, () => iteration(input, { iteration: i, ctx }))
        if (result.done) return result.value
        if (i < options.maxAttempts) await ctx.sleep(`sleep-${i}`, pause(i))
      }
      if (last < options.maxAttempts) return ctx.continueAsNew(input)
      throw new TerminalError(`loop "${id}" was not done after ${options.maxAttempts} iterations`, {
        code: 'LOOP_EXHAUSTED',
      })
    },
  })
}

/** One child of a fan-out. */
export interface ChildSpec {
  task: AnyTask
  input: unknown
  /** Unique within the fan-out. @default `child-<index>` */
  name?: string
  options?: ChildOptions
}

/** How one child settled, as `finalize` sees it. */
export type ChildResult = { ok: true; value: unknown } | { ok: false; error: StoredError }

export interface FanOutOptions<In extends StandardSchemaV1, Out> extends WorkflowOptions {
  input: In
  /** The children to start, from the input. Must be a pure function of the input. */
  children: (input: StandardSchemaV1.InferOutput<In>) => readonly ChildSpec[]
  /**
   * Runs once, as a recorded step, after every child settled, with one result per child in
   * order. Children settle like `Promise.allSettled`: a failed child does not fail the
   * parent unless `finalize` throws.
   */
  finalize: (results: ChildResult[], input: StandardSchemaV1.InferOutput<In>) => Promise<Out> | Out
}

/** A parent task that starts children in parallel, waits for all of them, then finalizes. */
export function fanOut<const Id extends string, In extends StandardSchemaV1, Out>(
  id: Id,
  options: FanOutOptions<In, Out>,
): Task<Id, StandardSchemaV1.InferInput<In>, StandardSchemaV1.InferOutput<In>, Awaited<Out>> {
  return task({
    id,
    input: options.input,
    ...taskOptions(options),
    run: async (input, ctx) => {
      const specs = options.children(input)
      const settled = await ctx.allSettled(
        specs.map((spec, i) =>
          ctx.child(spec.name ?? `child-${i}`, spec.task.id, spec.input, spec.options ?? {}),
        ),
      )
      const results: ChildResult[] = settled.map((r) =>
        r.status === 'fulfilled'
          ? { ok: true, value: r.value }
          : { ok: false, error: serializeError(r.reason) },
      )
      return ctx.step('finalize', () => options.finalize(results, input))
    },
  })
}
