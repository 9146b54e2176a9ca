/**
 * An execution's durable record as the storage port holds it: step records, the signal inbox,
 * and what a replay reads and writes. storage.ts re-exports them.
 */
import type { StepKind, StepStatus } from './durable-record'
import type { ExecutionStatus } from './state-machine'
import type { ExecutionRow, NewExecution } from './storage-executions'

/** One entry of an execution's durable record. */
export interface StepRow {
  executionId: string
  position: number
  name: string
  kind: StepKind
  status: StepStatus
  /** JSON text of the step's value, the signal's payload, the child's output. */
  value: string | null
  /** JSON text of a `StoredError`. */
  error: string | null
  wakeAt: number | null
  childId: string | null
  signalName: string | null
  wakeupKey: string | null
  createdAt: number
  completedAt: number | null
}

export interface SignalRow {
  seq: number
  executionId: string
  name: string
  /** JSON text. */
  payload: string
  createdAt: number
  consumedBy: string | null
}

export interface ChildState {
  id: string
  status: ExecutionStatus
  output: string | null
  error: string | null
}

/**
 * What a replay needs: the record, the unconsumed signals, and the states of the children the
 * record still waits for (a child the run consumed is in the record, done or failed).
 */
export interface RunState {
  steps: StepRow[]
  inbox: SignalRow[]
  children: ChildState[]
}

/** A step record written by a run, fenced by (executionId, run). */
export interface StepWrite {
  executionId: string
  run: number
  step: Omit<StepRow, 'executionId' | 'createdAt' | 'completedAt'>
  /** Marks this inbox signal consumed by the step, in the same transaction. */
  consumeSignalSeq?: number
  /** Enqueues this child with the step (ctx.child, ctx.spawn), in the same transaction. */
  child?: NewExecution
}

export type StepWriteResult = 'written' | 'stale' | 'conflict' | 'superseded'

export type WakeupOutcome =
  | { result: 'not_found' }
  | { result: 'finished'; executionId: string }
  | { result: 'woken'; executionId: string }

export type SignalOutcome =
  | { result: 'not_found' }
  | { result: 'finished'; status: ExecutionStatus }
  | { result: 'stored'; seq: number; row: ExecutionRow }
