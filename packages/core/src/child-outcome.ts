import { ChildExecutionError, serializeError, type StoredError } from './errors'
import { isTerminalStatus } from './state-machine'
import type { ChildOutcome, ChildState } from './storage'

/**
 * What a parent's `ctx.child` sees of a child: its output (JSON text), or the
 * `ChildExecutionError` it throws (JSON of a `StoredError`, without a stack: that would be the
 * engine's, not the task's). `undefined` while the child is not finished. The parent records
 * it when its run first sees it, and replays its own record from then on: a later change to
 * the child (a retry) or its deletion (retention) does not change what the parent saw.
 */
export function childOutcome(child: ChildState): ChildOutcome | undefined {
  if (!isTerminalStatus(child.status)) return undefined
  if (child.status === 'completed') return { status: 'done', value: child.output ?? 'null' }
  const childError = child.error === null ? null : (JSON.parse(child.error) as StoredError)
  const { stack: _stack, ...error } = serializeError(
    new ChildExecutionError(child.id, child.status, childError),
  )
  return { status: 'failed', error: JSON.stringify(error) }
}
