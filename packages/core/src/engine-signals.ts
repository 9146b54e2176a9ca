/**
 * Messages to an execution from outside (`Engine.signal`, `Engine.wakeup`): each is stored
 * with the execution, which is then woken to take it.
 */
import type { Clock } from './clock'
import { ConflictError, NotFoundError, ValidationError } from './errors'
import { toExecution, type Execution } from './execution-view'
import type { Executor } from './executor'
import { isExecutionId } from './ids'
import { MAX_STEP_NAME_LENGTH } from './durable-record'
import { serializePayload } from './payload'
import type { Storage } from './storage'

interface Deps {
  storage: Storage
  clock: Clock
  maxPayloadBytes: number
  executor: Executor
}

/** Stores a signal in the execution's inbox and wakes it; see `Engine.signal`. */
export async function sendSignal(
  { storage, clock, maxPayloadBytes, executor }: Deps,
  executionId: string,
  name: string,
  payload: unknown,
): Promise<Execution> {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_STEP_NAME_LENGTH) {
    throw new ValidationError(`signal name must be 1 to ${MAX_STEP_NAME_LENGTH} characters`, [
      { path: ['name'], message: `expected a string of 1 to ${MAX_STEP_NAME_LENGTH} characters` },
    ])
  }
  const json = serializePayload(payload, 'signal payload', maxPayloadBytes)
  const outcome = isExecutionId(executionId)
    ? await executor.wakeAfter(storage.signal(executionId, name, json, clock.now()))
    : ({ result: 'not_found' } as const)
  if (outcome.result === 'not_found')
    throw new NotFoundError(`no execution with id "${executionId}"`, { executionId })
  if (outcome.result === 'finished') {
    throw new ConflictError(
      `execution ${executionId} is already ${outcome.status}; it takes no more signals`,
      { executionId, status: outcome.status },
    )
  }
  executor.wake()
  return toExecution(outcome.row)
}

/** Completes the wait registered under `key` and wakes its execution; see `Engine.wakeup`. */
export async function completeWakeup(
  { storage, clock, maxPayloadBytes, executor }: Deps,
  key: string,
  result: { output: unknown } | { error: { message: string; code?: string } },
): Promise<{ executionId: string }> {
  const stored =
    'error' in result
      ? {
          error: JSON.stringify({
            name: 'WakeupError',
            message: result.error.message,
            ...(result.error.code ? { code: result.error.code } : {}),
            retryable: false,
          }),
        }
      : { value: serializePayload(result.output, 'wakeup output', maxPayloadBytes) }
  const outcome = await executor.wakeAfter(storage.wakeup(key, stored, clock.now()))
  if (outcome.result === 'not_found')
    throw new NotFoundError(`no wait has the wakeup key "${key}"`, { wakeupKey: key })
  if (outcome.result === 'finished') {
    throw new ConflictError(
      `the wait with wakeup key "${key}" (execution ${outcome.executionId}) was already woken or has ended`,
      { executionId: outcome.executionId },
    )
  }
  executor.wake()
  return { executionId: outcome.executionId }
}
