import type { Execution } from '@ratchet/contract'

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
