export { createClient } from './client'
export type {
  ClientOptions,
  RatchetClient,
  TaskHandle,
  Enqueued,
  EnqueuedSummary,
  EnqueueItem,
  WaitOptions,
  WatchOptions,
  ExecutionOf,
  WatchEventOf,
  ContractError,
  ClientError,
  WakeupError,
  RatchetPromise,
  PageOptions,
  HistoryOptions,
  ChangesOptions,
} from './client'
export { RatchetError, WaitTimeoutError, ExecutionFailedError } from './errors'
export { remoteExecutor } from './remote-executor'
export { isRetryableError } from './retryable'
export type { TaskLike, TaskInput, TaskOutput, TaskKeys, EventOf } from './task-types'
export { ORPCError, isDefinedError, safe, consumeEventIterator } from '@orpc/client'
export type { SafeResult } from '@orpc/client'
export type {
  Execution,
  ExecutionStatus,
  EnqueueOptions,
  HistoryEvent,
  StoredError,
  TaskInfo,
  TaskRefresh,
  TaskQueue,
  ListInput,
  Issue,
  ErrorCode,
  WatchEvent,
  PublishResult,
  RecordedEvent,
  ExecutionSummary,
  ErrorSummary,
  HistoryPage,
  Step,
  StepsPage,
  TaskStats,
  ThroughputInput,
  ThroughputBucket,
  Throughput,
  ChangeEvent,
  BulkResult,
} from '@ratchet/contract'
