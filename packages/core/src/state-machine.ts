/**
 * The execution state machine. Every transition is a guarded compare-and-set in SQL
 * (storage adapters implement the guards below; this file is their single description)
 * and every transition appends a history row with its timestamp.
 *
 *                      enqueue
 *                         │
 *                         ▼
 *     ┌──────────────► queued ◄─────────────────┐
 *     │                   │ claim               │ retry / recover / release
 *     │                   ▼                     │
 *     │               running ──────────────────┘
 *     │             ╱    │    ╲
 *     │   complete ╱     │fail ╲ time out
 *     │           ▼      ▼      ▼
 *     │   completed   failed   timed_out          (terminal)
 *     │
 *     └── cancel: queued | running | waiting ──► cancelled   (terminal)
 *
 *   rerun (executions.retry): failed | timed_out | cancelled ──► queued.
 *
 *   `waiting`: suspended on a durable wait (a sleep, a signal, a child, a wake-up key);
 *   it holds no worker slot. running ──park──► waiting ──wake──► queued.
 *
 * Transition   from                        to          guard (all in one SQL statement)
 * ──────────   ─────────────────────────   ─────────   ───────────────────────────────────────────
 * enqueue      (none)                      queued      no execution with the same (taskId, idempotencyKey)
 * claim        queued                      running     run_at <= now, task registered with this worker;
 *                                                      sets runs = runs + 1 (the new run), claimed_at, a lease
 * complete     running                     completed   fence: status = running AND runs = the run's number
 * retry        running                     queued      fence; the error is retryable and failures + 1 < maxAttempts;
 *                                                      due its back-off after the write (never before its row)
 * fail         running                     failed      fence; not retryable, or failures reach maxAttempts
 * time_out     running                     timed_out   fence; the attempt timed out and attempts are used up
 * release      running                     queued      fence; graceful shutdown gave up on the run
 * continue     running                     queued      fence; ctx.continueAsNew: generation + 1, new input,
 *                                                      failures and recoveries 0; the record, consumed
 *                                                      signals and history are deleted (one history row left)
 * recover      running                     queued      lease_expires_at < now (or the owner is known dead) and
 *                                                      the recovery budget holds: recoveries + 1 (or 1, when the
 *                                                      lost run recorded progress) <= maxRecoveries. Not a failure
 * abandon      running                     failed      as recover, but past maxRecoveries: RECOVERIES_EXHAUSTED
 * park         running                     waiting     fence; nothing but durable waits is in flight. If the
 *                                                      execution was woken while it ran (wake_pending), it
 *                                                      goes to queued instead, so no wake-up is lost
 * wake         waiting                     queued      its sleep or wait timeout is due, a signal or wake-up
 *                                                      arrived, or an awaited child ended (a running one is
 *                                                      marked wake_pending instead)
 * expire       queued | waiting            timed_out   deadline_at <= now (a running attempt is aborted by its
 *                                                      own timer and settles time_out)
 * cancel       queued | running | waiting  cancelled   status is not terminal; every unfinished descendant
 *                                                      is cancelled in the same transaction
 * rerun        failed | timed_out |        queued      asked for through the API (executions.retry); failures
 *              cancelled                               reset, recorded failures forgotten, successes kept
 *
 * A write from a stale run (its lease was recovered, or the execution was cancelled) matches
 * no row and changes nothing: that is the fence.
 *
 * Counters (docs/execution-model.md, "Runs, attempts and recoveries"):
 * - runs: claims (every claim starts a run; resumes after waits and recoveries included). The
 *   fence. Never reset. Stored in the SQL column `attempt`, named for what it first counted.
 * - failures: failed attempts: retry, fail, time_out, expire and abandon each add one; recover,
 *   release and park do not. maxAttempts bounds it; rerun and continue reset it.
 * - attempt: failures + 1 (what ctx.attempt says), or failures once the execution ended
 *   failed or timed_out. Derived, not stored.
 * - recoveries: recover sets it (1 after a lost run that recorded progress, else + 1); every
 *   other settlement from running but release resets it to 0, and so does rerun.
 *   maxRecoveries bounds it.
 */

export const EXECUTION_STATUSES = [
  'queued',
  'running',
  'waiting',
  'completed',
  'failed',
  'cancelled',
  'timed_out',
] as const

export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number]

export const TERMINAL_STATUSES = [
  'completed',
  'failed',
  'cancelled',
  'timed_out',
] as const satisfies readonly ExecutionStatus[]
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number]

/** Statuses from which `cancel` applies. */
export const CANCELLABLE_STATUSES = [
  'queued',
  'running',
  'waiting',
] as const satisfies readonly ExecutionStatus[]

/** Statuses from which `rerun` (executions.retry) applies. */
export const RERUNNABLE_STATUSES = [
  'failed',
  'timed_out',
  'cancelled',
] as const satisfies readonly ExecutionStatus[]

export type TransitionName =
  | 'enqueue'
  | 'claim'
  | 'complete'
  | 'retry'
  | 'fail'
  | 'time_out'
  | 'release'
  | 'continue'
  | 'recover'
  | 'abandon'
  | 'park'
  | 'wake'
  | 'expire'
  | 'cancel'
  | 'rerun'

export const TRANSITIONS: Readonly<
  Record<TransitionName, { from: readonly ExecutionStatus[]; to: ExecutionStatus }>
> = {
  enqueue: { from: [], to: 'queued' },
  claim: { from: ['queued'], to: 'running' },
  complete: { from: ['running'], to: 'completed' },
  retry: { from: ['running'], to: 'queued' },
  fail: { from: ['running'], to: 'failed' },
  time_out: { from: ['running'], to: 'timed_out' },
  release: { from: ['running'], to: 'queued' },
  continue: { from: ['running'], to: 'queued' },
  recover: { from: ['running'], to: 'queued' },
  abandon: { from: ['running'], to: 'failed' },
  park: { from: ['running'], to: 'waiting' },
  wake: { from: ['waiting'], to: 'queued' },
  expire: { from: ['queued', 'waiting'], to: 'timed_out' },
  cancel: { from: CANCELLABLE_STATUSES, to: 'cancelled' },
  rerun: { from: RERUNNABLE_STATUSES, to: 'queued' },
}

export function isTerminalStatus(status: ExecutionStatus): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly ExecutionStatus[]).includes(status)
}

export function isExecutionStatus(value: unknown): value is ExecutionStatus {
  return typeof value === 'string' && (EXECUTION_STATUSES as readonly string[]).includes(value)
}

/** Whether some transition leads from `from` to `to`. */
export function canTransition(from: ExecutionStatus, to: ExecutionStatus): boolean {
  return Object.values(TRANSITIONS).some((t) => t.to === to && t.from.includes(from))
}
