import type { Execution, StoredError } from '@ratchet/contract'

/** `wait` gave up: `timeoutMs` passed before the execution finished. `execution` is its last seen state. */
export class WaitTimeoutError extends Error {
  readonly code = 'WAIT_TIMEOUT'

  constructor(
    readonly executionId: string,
    readonly execution: Execution | undefined,
    timeoutMs: number,
  ) {
    super(
      `execution ${executionId} did not finish within ${timeoutMs} ms (last status: ${execution?.status ?? 'unknown'})`,
    )
    this.name = 'WaitTimeoutError'
  }
}

/**
 * `run` (or a typed handle's `wait` helper that expects an output) saw the execution end
 * without completing: it failed, timed out or was cancelled. `execution` is its final state
 * and `cause` its stored error.
 */
export class ExecutionFailedError extends Error {
  readonly code = 'EXECUTION_FAILED'
  readonly executionId: string
  readonly status: Execution['status']
  readonly error: StoredError | null

  constructor(readonly execution: Execution) {
    super(
      `execution ${execution.id} of task "${execution.taskId}" ended ${execution.status}` +
        (execution.error ? `: ${execution.error.message}` : ''),
    )
    this.name = 'ExecutionFailedError'
    this.executionId = execution.id
    this.status = execution.status
    this.error = execution.error
  }
}
