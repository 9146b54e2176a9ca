import type {
  ChangeEvent as ApiChangeEvent,
  Execution as ApiExecution,
  ExecutionSummary as ApiExecutionSummary,
  HistoryEvent as ApiHistoryEvent,
  Step as ApiStep,
  TaskStats as ApiTaskStats,
  ThroughputBucket as ApiThroughputBucket,
} from '@ratchet/contract'
import type {
  Execution,
  ExecutionChangeEvent,
  ExecutionStep,
  ExecutionSummary,
  HistoryEvent,
  TaskQueueState,
  TaskStats,
  ThroughputBucket,
} from '@ratchet/core'

/** Engine values (times in ms) → API values (Dates), as the contract's schemas expect. */
const date = (ms: number) => new Date(ms)
const maybeDate = (ms: number | null) => (ms === null ? null : new Date(ms))

export function toApiExecution(e: Execution): ApiExecution {
  return {
    ...e,
    runAt: date(e.runAt),
    createdAt: date(e.createdAt),
    updatedAt: date(e.updatedAt),
    startedAt: maybeDate(e.startedAt),
    finishedAt: maybeDate(e.finishedAt),
    deadlineAt: maybeDate(e.deadlineAt),
  }
}

export function toApiHistoryEvent(e: HistoryEvent): ApiHistoryEvent {
  return { ...e, at: date(e.at) }
}

export function toApiExecutionSummary(e: ExecutionSummary): ApiExecutionSummary {
  return {
    ...e,
    runAt: date(e.runAt),
    createdAt: date(e.createdAt),
    updatedAt: date(e.updatedAt),
    startedAt: maybeDate(e.startedAt),
    finishedAt: maybeDate(e.finishedAt),
    deadlineAt: maybeDate(e.deadlineAt),
  }
}

export function toApiStep(s: ExecutionStep): ApiStep {
  return {
    ...s,
    wakeAt: maybeDate(s.wakeAt),
    createdAt: date(s.createdAt),
    completedAt: maybeDate(s.completedAt),
  }
}

export function toApiChange(c: ExecutionChangeEvent): ApiChangeEvent {
  return { ...c, at: date(c.at) }
}

export function toApiTaskStats(t: TaskStats): ApiTaskStats {
  return { ...t, oldestQueuedAt: maybeDate(t.oldestQueuedAt), pausedAt: maybeDate(t.pausedAt) }
}

export function toApiTaskQueue(q: TaskQueueState): { taskId: string; pausedAt: Date | null } {
  return { taskId: q.taskId, pausedAt: maybeDate(q.pausedAt) }
}

export function toApiThroughputBucket(b: ThroughputBucket): ApiThroughputBucket {
  return { ...b, at: date(b.at) }
}
