/**
 * What the storage port takes and returns when a run ends or is taken back: settlements,
 * lease recovery, cancel and rerun. storage.ts re-exports them.
 */
import type { ExecutionStatus } from './state-machine'
import type { ExecutionRow } from './storage-executions'

/** How a finished child ended, as its parent records it in the child's step record (see `childOutcome`). */
export type ChildOutcome = { status: 'done'; value: string } | { status: 'failed'; error: string }

/** One run of an execution: the fence of its writes. */
export interface RunRef {
  id: string
  /** The run number (`ExecutionRow.runs` as claimed). */
  run: number
}

/**
 * The result of a finished run, written fenced by `(id, run)`. `wakeParentId`: the
 * parent awaiting this execution, woken when it ends (the executor knows it from the claim).
 * `cancelChildren`: when the settlement ends the execution (complete, fail, time_out), its
 * children that it awaited (`ctx.child`) and that are not finished are cancelled with their
 * subtrees, with this error (JSON of a `StoredError`), in the same transaction. The executor
 * sets it only for executions that may have children, so plain tasks pay nothing for it.
 */
export type Settlement = {
  wakeParentId?: string | null
  cancelChildren?: { error: string }
  /**
   * When the settlement ends the execution: its outcome as its parent records it (see
   * `childOutcome`), written in the same transaction into the parent's record at `position`
   * if that record still waits on this execution. Set when the executor knows where the parent
   * recorded the child; otherwise the parent's run records it when it first sees the end.
   */
  parentRecord?: { parentId: string; position: number; outcome: ChildOutcome }
} & (
  | { transition: 'complete'; id: string; run: number; output: string }
  /**
   * running → waiting until `runAt` (the earliest sleep or wait timeout, or WAIT_FOREVER).
   * If something woke the execution while it ran (a signal, a child's end), it goes back to
   * queued at once instead: no wake-up is ever lost between a run's last read and its park.
   */
  | { transition: 'park'; id: string; run: number; runAt: number }
  /**
   * running → queued, due `delayMs` after the settlement is written (the back-off runs from
   * the time the failure is recorded, so the next run is never due before it).
   */
  | { transition: 'retry'; id: string; run: number; error: string; delayMs: number }
  /**
   * running → queued, due at once, as the next generation (`ctx.continueAsNew`): `input`
   * replaces the input, `generation` grows by one, failures and recoveries restart at 0, the
   * error is cleared, and the record (steps), the consumed signals and the history are deleted,
   * leaving one history row for this transition (detail `{"transition":"continue",
   * "generation":n}`). Unconsumed signals stay in the inbox. With `cancelChildren`, the unfinished
   * children it awaited are cancelled as when it ends.
   */
  | { transition: 'continue'; id: string; run: number; input: string }
  /** running → queued, due at once (graceful shutdown gave up on the run). */
  | { transition: 'release'; id: string; run: number; error: string }
  /**
   * `failedStep`: the record (a step, a wait, a child) whose recorded failure ended the run,
   * uncaught. Kept with the transition in the history; `rerun` forgets that record, and only it.
   */
  | {
      transition: 'fail' | 'time_out'
      id: string
      run: number
      error: string
      failedStep?: { position: number; name: string }
    }
)

export interface RecoverRequest {
  now: number
  /** Why the run was lost (JSON of a `StoredError`), kept in the history row of each recovery. */
  error: string
  /**
   * The error (JSON of a `StoredError`) of an execution that used up its recovery budget,
   * given its `maxRecoveries`.
   */
  exhaustedError: (maxRecoveries: number) => string
  /**
   * When given, an execution that fails this way (its recovery budget used up) cancels the
   * unfinished children it awaited, with their subtrees, with this error (as
   * `Settlement.cancelChildren`).
   */
  cancelChildrenError?: string
  limit: number
  /**
   * Also recover unexpired leases whose owner is not this one. Only sound when the adapter
   * is `singleWriter`: then no other process can be alive.
   */
  everyOwnerBut?: string
}

export interface RecoveredExecution {
  id: string
  taskId: string
  /** The run that was lost. */
  run: number
  /** queued: recovered; failed: its recovery budget was used up (RECOVERIES_EXHAUSTED). */
  status: 'queued' | 'failed'
  /** Whether the lost run recorded progress (a step, wait or child record written since its claim). */
  progressed: boolean
  /** The execution's `recoveries` after this one (when failed: unchanged, at its maxRecoveries). */
  recoveries: number
  maxRecoveries: number
  /** The awaited children cancelled because it failed (see `cancelChildrenError`). */
  cancelledChildren: CancelledExecution[]
}

/** An execution that a cancel reached, with the status it was cancelled from. */
export interface CancelledExecution {
  id: string
  taskId: string
  run: number
  cancelledFrom: ExecutionStatus
}

export interface SettleOutcome {
  /** Per settlement, whether its fence held (false: a stale run, nothing written). */
  applied: boolean[]
  /** Executions cancelled because a settled execution ended (see `Settlement.cancelChildren`). */
  cancelled: CancelledExecution[]
}

export interface RerunOutcome {
  row: ExecutionRow
  /** The status it was rerun from; null when it was not rerun. */
  rerunFrom: ExecutionStatus | null
  /** Descendants rerun with it: those cancelled because it ended (`PARENT_ENDED`). */
  descendants: { id: string; taskId: string; run: number }[]
}

export interface CancelOutcome {
  /** The execution after the call. */
  row: ExecutionRow
  /** The status it was cancelled from; `null` when it was already terminal (nothing changed). */
  cancelledFrom: ExecutionStatus | null
  /** Descendants cancelled with it (the whole subtree below it that was not finished). */
  descendants: CancelledExecution[]
}
