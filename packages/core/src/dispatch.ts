import type { StandardSchemaV1 } from './schema'
import type { RetryPolicyInput } from './retry-policy'
import { task } from './task'
import type { AnyTask, TaskContext } from './task-types'

/**
 * Where decorated methods run: in this process (`LocalExecutor` from @ratchet/testing) or on
 * a Ratchet server (`remoteExecutor(client)` from @ratchet/client). Switching is one line:
 * `useExecutor(...)`.
 */
export interface DispatchExecutor {
  /** Enqueues an execution of `taskId`; resolves once it is durably enqueued. */
  dispatch(taskId: string, input: unknown): Promise<void>
  /**
   * Runs `taskId` to the end; resolves with its output, rejects with an error carrying the
   * final execution when it failed, timed out or was cancelled.
   */
  call(taskId: string, input: unknown): Promise<unknown>
}

let current: DispatchExecutor | undefined

/** Routes every decorated method call through `executor` from now on. */
export function useExecutor(executor: DispatchExecutor): void {
  current = executor
}

function executor(taskId: string): DispatchExecutor {
  if (!current)
    throw new Error(`@dispatch method "${taskId}" was called before useExecutor(): no executor to run it on`)
  return current
}

/** How a decorated method is registered as a task. */
export interface DispatchDefinition<In extends StandardSchemaV1> {
  /** The task id; the same on the server and the caller. */
  id: string
  input: In
  description?: string
  timeoutMs?: number
  retry?: RetryPolicyInput
  priority?: number
}

type TaskMethod<This, In, Out> = (this: This, input: In, ctx?: TaskContext) => Promise<Out>
interface Registered {
  definition: DispatchDefinition<StandardSchemaV1>
  method: TaskMethod<unknown, unknown, unknown>
}
const byInstance = new WeakMap<object, Map<string, Registered>>()

function decorate(mode: 'dispatch' | 'call', definition: DispatchDefinition<StandardSchemaV1>) {
  return function <This extends object, In, Out>(
    method: TaskMethod<This, In, Out>,
    context: ClassMethodDecoratorContext<This, TaskMethod<This, In, Out>>,
  ): TaskMethod<This, In, Out> {
    if (context.static || context.private)
      throw new TypeError(`@${mode === 'call' ? 'dispatchAwait' : 'dispatch'}: only public instance methods`)
    context.addInitializer(function (this: This) {
      let methods = byInstance.get(this)
      if (!methods) byInstance.set(this, (methods = new Map<string, Registered>()))
      const other = methods.get(definition.id)
      if (other && other.method !== method)
        throw new TypeError(`two methods of one class are task "${definition.id}"`)
      methods.set(definition.id, { definition, method: method as TaskMethod<unknown, unknown, unknown> })
    })
    // Every call goes through the executor; the engine runs the undecorated method (tasksOf).
    return async function (this: This, input: In): Promise<Out> {
      if (mode === 'dispatch') {
        await executor(definition.id).dispatch(definition.id, input)
        return undefined as Out
      }
      return (await executor(definition.id).call(definition.id, input)) as Out
    }
  }
}

/**
 * Fire and forget: calling the method enqueues an execution of task `id` on the current
 * executor and resolves (with nothing) once it is durably enqueued; the method's body runs
 * there as the task. Declare the method `Promise<void>`.
 */
export function dispatch<In extends StandardSchemaV1>(definition: DispatchDefinition<In>) {
  return decorate('dispatch', definition)
}

/**
 * Calling the method runs task `id` on the current executor and resolves with its output
 * (its body's return value, through JSON), or rejects when the execution fails.
 */
export function dispatchAwait<In extends StandardSchemaV1>(definition: DispatchDefinition<In>) {
  return decorate('call', definition)
}

/**
 * The tasks of the decorated methods of `instances`, for a server's tasks module or a
 * `LocalExecutor`: each runs its method on its instance, with `ctx` as second argument.
 */
export function tasksOf(...instances: object[]): Record<string, AnyTask> {
  const tasks: Record<string, AnyTask> = {}
  for (const instance of instances) {
    const methods = byInstance.get(instance)
    if (!methods) throw new TypeError('tasksOf: the object has no @dispatch or @dispatchAwait methods')
    for (const [id, { definition, method }] of methods) {
      if (tasks[id]) throw new TypeError(`tasksOf: two methods are task "${id}"`)
      tasks[id] = task({ ...definition, run: (input, ctx) => method.call(instance, input, ctx) })
    }
  }
  return tasks
}
