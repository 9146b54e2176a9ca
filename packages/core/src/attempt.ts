import type { TimerHandle } from './clock'
import { ParentEndedError, serializeError } from './errors'
import type { Logger } from './logger'
import type { AttemptInfo } from './observer'
import type { RunContext } from './run-context'
import type { ExecutionStatus } from './state-machine'
import type { ExecutionRow, RunState, Settlement } from './storage'
import type { AnyTask } from './task-types'

/**
 * @internal One attempt this process runs: from its claim until its result is written (or it
 * is abandoned). Shared by the executor's parts: the attempts (attempt-lifecycle.ts) make and
 * end it, the write-behind queues its writes, the claim loop counts its slot, the leases keep
 * it alive.
 */
export interface RunningAttempt {
  readonly row: ExecutionRow
  readonly task: AnyTask
  /** Which run this is, as `withinAttempt` is told. */
  readonly info: AttemptInfo
  readonly controller: AbortController
  context: RunContext | undefined
  state: Promise<RunState> | undefined
  readonly logger: Logger
  readonly startedAt: number
  timer: TimerHandle | undefined
  /** A result was produced (settlement queued) or the attempt was abandoned. */
  finished: boolean
  /**
   * Counts against `concurrency`. Set at the claim; cleared when it parks (its park may still
   * be queued: it runs no code), while it is in an in-memory sleep, and when it is released.
   */
  holdsSlot: boolean
  /** Its slot and result are done with (idempotent `release`). */
  released: boolean
  /** When its timeout or deadline fires; restarted after an in-memory sleep. */
  endsAt: number
  /** Cancels each in-memory sleep in progress (the attempt ended meanwhile). */
  readonly sleepers: Set<() => void>
  /** This attempt started a child it awaits (`ctx.child`). */
  startedChildren: boolean
  readonly done: Promise<void>
  resolveDone: () => void
}

/** @internal The status each settlement leaves its execution in, once written. */
export const SETTLED_STATUS: Record<Settlement['transition'], ExecutionStatus> = {
  park: 'waiting',
  continue: 'queued',
  complete: 'completed',
  retry: 'queued',
  release: 'queued',
  fail: 'failed',
  time_out: 'timed_out',
}

/** @internal The error of the children an ending execution cancels (JSON of a `StoredError`). */
export const PARENT_ENDED_ERROR = JSON.stringify(serializeError(new ParentEndedError()))

/** @internal A new attempt of the claimed `row`, started at `startedAt`: holding no slot yet, no timer, no context. */
export function newRunningAttempt(
  row: ExecutionRow,
  task: AnyTask,
  logger: Logger,
  startedAt: number,
): RunningAttempt {
  let resolveDone!: () => void
  const done = new Promise<void>((resolve) => (resolveDone = resolve))
  const info: AttemptInfo = {
    executionId: row.id,
    taskId: row.taskId,
    attempt: row.failures + 1,
    run: row.runs,
  }
  return {
    row,
    task,
    info,
    controller: new AbortController(),
    context: undefined,
    state: undefined,
    // Every line about the run carries its executionId, taskId, attempt and run.
    logger: logger.child({ ...info }),
    startedAt,
    endsAt: startedAt,
    timer: undefined,
    finished: false,
    holdsSlot: false,
    released: false,
    sleepers: new Set(),
    startedChildren: false,
    done,
    resolveDone,
  }
}
