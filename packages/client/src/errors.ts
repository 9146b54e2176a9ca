/**
 * The client's error classes are the core's (`@ratchet/core/errors`, a module that imports
 * nothing, so no engine code reaches a browser bundle): `error instanceof WaitTimeoutError` is
 * the same test in a task, a test engine and a web app. Here they are typed with the API's
 * `Execution` (the same constructors, declared so that `instanceof` narrows to these types).
 */
import type { Execution } from '@ratchet/contract'
import {
  ExecutionFailedError as CoreExecutionFailedError,
  WaitTimeoutError as CoreWaitTimeoutError,
} from '@ratchet/core/errors'

export { RatchetError } from '@ratchet/core/errors'

/**
 * `executions.wait` (or a handle's `wait` or `run`) gave up: `timeoutMs` passed before the
 * execution finished. `execution` is its last state seen (`undefined` when none was);
 * `code` is `WAIT_TIMEOUT`.
 */
export const WaitTimeoutError: {
  new (...args: ConstructorParameters<typeof CoreWaitTimeoutError<Execution>>): WaitTimeoutError
  readonly prototype: WaitTimeoutError
} = CoreWaitTimeoutError
export type WaitTimeoutError = CoreWaitTimeoutError<Execution>

/**
 * A handle's `run` (or `@dispatchAwait` through `remoteExecutor`) saw the execution end without
 * completing: it failed, timed out or was cancelled. `execution` is its final state, `status`
 * and `error` its status and stored error; `code` is `EXECUTION_FAILED`.
 */
export const ExecutionFailedError: {
  new (execution: Execution): ExecutionFailedError
  readonly prototype: ExecutionFailedError
} = CoreExecutionFailedError
export type ExecutionFailedError = CoreExecutionFailedError<Execution>
