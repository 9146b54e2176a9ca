export { createClient } from './client'
export type { ClientOptions, RatchetClient, TaskHandle, Enqueued, WaitOptions } from './client'
export { WaitTimeoutError } from './errors'
export type { TaskLike, TaskInput, TaskOutput, TaskKeys } from './task-types'
export { ORPCError, isDefinedError, safe } from '@orpc/client'
export type {
  Execution,
  ExecutionStatus,
  EnqueueOptions,
  HistoryEvent,
  StoredError,
  TaskInfo,
  ListInput,
  Issue,
  ErrorCode,
} from '@ratchet/contract'
