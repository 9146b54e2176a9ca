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

/** The name under which `ctx.patched(changeId)` records its marker: `patched:<changeId>`. */
export const PATCH_PREFIX = 'patched:'

/** Step, wait and signal names: 1 to 200 characters. */
export const MAX_STEP_NAME_LENGTH = 200

/** Throws `TypeError` unless `name` is a valid step or wait name. */
export function checkStepName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_STEP_NAME_LENGTH) {
    throw new TypeError(
      `step and wait names must be strings of 1 to ${MAX_STEP_NAME_LENGTH} characters, got ${JSON.stringify(name)}`,
    )
  }
}

/**
 * Why a call does not match the record, or `undefined` when it does: the call asks for `kind`
 * `name` at `position`; `atPosition` is what the record has there, `recordedAt` where the record
 * has `name`. The message of a `NonDeterminismError` (replay on the server and in an app).
 */
export function replayMismatch(
  atPosition: { name: string; kind: StepKind } | undefined,
  recordedAt: number | undefined,
  position: number,
  name: string,
  kind: StepKind,
): string | undefined {
  if (atPosition && atPosition.name !== name)
    return `non-deterministic replay: at position ${position} the record has ${atPosition.kind} "${atPosition.name}" but the run asked for ${kind} "${name}"`
  if (recordedAt !== undefined && recordedAt !== position)
    return `non-deterministic replay: ${kind} "${name}" was recorded at position ${recordedAt} but the run asked for it at position ${position}`
  if (atPosition && atPosition.kind !== kind)
    return `non-deterministic replay: "${name}" was recorded as a ${atPosition.kind} but the run asked for a ${kind}`
  return undefined
}
