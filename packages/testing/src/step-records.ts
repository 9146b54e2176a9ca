import {
  childOutcome,
  type ChildState,
  type StepKind,
  type StepRow,
  type StepStatus,
  type StoredError,
} from '@ratchet/core'

/** One entry of an execution's durable record, as {@link TestEngine.steps} reports it. */
export interface StepRecord {
  /** Its place in the run, 0-based, in the order the run asked for steps and waits. */
  position: number
  name: string
  kind: StepKind
  /**
   * What a replay would see now: `done`, `failed`, or `waiting` while what it waits for has
   * not happened. A sleep reports `done` once its wake time has passed (the engine does not
   * rewrite its record: the wake time says it all). A child step is recorded `done` or
   * `failed` when the child ends (or when the parent's run first sees the end), and the parent
   * replays from that record ever after; until then it reports the child's end as it will be
   * recorded.
   */
  status: StepStatus
  /** The step's value, the signal's payload or the child's output, parsed from JSON; `null` when none. */
  value: unknown
  /** The error a replay throws, for a `failed` step; else `null`. */
  error: StoredError | null
  /** When a sleep ends or a signal wait times out (epoch ms); `null` otherwise. */
  wakeAt: number | null
  /** The child execution of a `child` or `spawn` step. */
  childId: string | null
  /** The signal name a `signal` wait takes. */
  signalName: string | null
}

/** Turns stored step rows into {@link StepRecord}s, in position order. */
export function toStepRecords(
  steps: readonly StepRow[],
  children: readonly ChildState[],
  now: number,
): StepRecord[] {
  return [...steps].sort((a, b) => a.position - b.position).map((step) => toStepRecord(step, children, now))
}

function toStepRecord(step: StepRow, children: readonly ChildState[], now: number): StepRecord {
  const record: StepRecord = {
    position: step.position,
    name: step.name,
    kind: step.kind,
    status: step.status,
    value: parseJson(step.value),
    error: parseJson(step.error) as StoredError | null,
    wakeAt: step.wakeAt,
    childId: step.childId,
    signalName: step.signalName,
  }
  if (step.status !== 'waiting') return record
  if (step.kind === 'sleep' && step.wakeAt !== null && step.wakeAt <= now)
    return { ...record, status: 'done' }
  const child = step.kind === 'child' ? children.find((c) => c.id === step.childId) : undefined
  const outcome = child && childOutcome(child)
  if (!outcome) return record
  // What the parent's run will record, and its ctx.child return or throw, when it next runs.
  return outcome.status === 'done'
    ? { ...record, status: 'done', value: parseJson(outcome.value) }
    : { ...record, status: 'failed', error: parseJson(outcome.error) as StoredError }
}

function parseJson(text: string | null): unknown {
  return text === null ? null : JSON.parse(text)
}
