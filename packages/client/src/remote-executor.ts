import type { RatchetClient } from './client'
import { ExecutionFailedError } from './errors'

/**
 * A dispatch executor (see `useExecutor` in @ratchet/core) that runs decorated methods on a
 * Ratchet server: `dispatch` enqueues, `call` enqueues and waits (rejecting with
 * `ExecutionFailedError` when the execution did not complete).
 */
export function remoteExecutor(client: RatchetClient<unknown>) {
  return {
    async dispatch(taskId: string, input: unknown): Promise<void> {
      await client.executions.enqueue(taskId, input)
    },
    async call(taskId: string, input: unknown): Promise<unknown> {
      const { executionId } = await client.executions.enqueue(taskId, input)
      const execution = await client.executions.wait(executionId)
      if (execution.status !== 'completed') throw new ExecutionFailedError(execution)
      return execution.output
    },
  }
}
