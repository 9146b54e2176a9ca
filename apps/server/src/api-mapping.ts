import type { Execution as ApiExecution, HistoryEvent as ApiHistoryEvent } from '@ratchet/contract'
import type { Execution, HistoryEvent } from '@ratchet/core'

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
