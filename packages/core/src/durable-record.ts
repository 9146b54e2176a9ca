/**
 * The durable record of an execution: one entry per step or wait, at the position where the
 * run asked for it. A resumed run is replayed against it (see run-context.ts).
 */
export const STEP_KINDS = ['step', 'sleep', 'signal', 'child', 'spawn', 'wakeup'] as const
export type StepKind = (typeof STEP_KINDS)[number]

/** `waiting`: a wait that is not yet satisfied. `failed`: a step or wait that ended in an error the run sees. */
export const STEP_STATUSES = ['done', 'failed', 'waiting'] as const
export type StepStatus = (typeof STEP_STATUSES)[number]

/** `run_at` of a waiting execution that only an event (signal, child) can wake: the largest Date. */
export const WAIT_FOREVER = 8_640_000_000_000_000

/** Step, wait and signal names: 1 to 200 characters. */
export const MAX_STEP_NAME_LENGTH = 200
