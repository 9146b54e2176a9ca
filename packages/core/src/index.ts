export {
  task,
  isTask,
  TASK_ID_PATTERN,
  EVENT_TYPE_PATTERN,
  DEFAULT_TIMEOUT_MS,
  MAX_TIMEOUT_MS,
  MIN_PRIORITY,
  MAX_PRIORITY,
  DEFAULT_MAX_RECOVERIES,
  MAX_RECOVERIES_LIMIT,
} from './task'
export type { TaskDefinition } from './task'
export type {
  Task,
  AnyTask,
  TaskContext,
  ChildOptions,
  InputOf,
  OutputOf,
  StepOptions,
  WaitForSignalOptions,
  TaskSource,
  TaskDebounce,
} from './task-types'
export { TaskSourceError, UNKNOWN_ID_REFRESH_MS } from './task-refresh'
export type { TaskRefreshResult } from './task-refresh'
export type { TaskQueueState } from './engine-task-queues'
export { RunContext } from './run-context'
export { durableDriver } from './driver-hooks'
export type { DurableDriver } from './driver-hooks'
export { childOutcome } from './child-outcome'
export { sequence, loop, fanOut } from './workflows'
export type { LoopResult, LoopOptions, ChildSpec, ChildResult, FanOutOptions } from './workflows'
export type { AttemptHost } from './run-context'
export {
  STEP_KINDS,
  STEP_STATUSES,
  WAIT_FOREVER,
  MAX_STEP_NAME_LENGTH,
  PATCH_PREFIX,
  checkStepName,
  replayMismatch,
} from './durable-record'
export type { StepKind, StepStatus } from './durable-record'
export { prepareExecution } from './prepare-execution'
export type { ParentLink } from './prepare-execution'
export { TaskRegistry, declareTaskSource, isTaskSource } from './registry'
export type { TaskMap } from './registry'
export { Engine } from './engine'
export { toExecution, attemptOf, executionAsOf } from './execution-view'
export type {
  EngineOptions,
  EnqueueOptions,
  EnqueueRequest,
  EnqueueResult,
  Execution,
  HistoryEvent,
  ListExecutionsQuery,
  HistoryPageQuery,
  StepsPageQuery,
  ThroughputQueryInput,
  ChangesSinceQuery,
} from './engine'
export { toExecutionSummary, summarizeExecution, toExecutionStep, emptyCounts } from './read-views'
export type {
  ExecutionSummary,
  ErrorSummary,
  ExecutionStep,
  TaskStats,
  ThroughputBucket,
  ExecutionChangeEvent,
  Page,
  BulkResult,
} from './read-views'
export { Executor } from './executor'
export type { ExecutorOptions } from './executor'
export type { ExecutorDeps } from './executor-context'
export type { StorageFailure } from './storage-health'
export type {
  AttemptInfo,
  ExecutionObserver,
  AttemptOutcome,
  EnqueuedExecution,
  StepInfo,
  StorageOperation,
} from './observer'
export { ChangeFeed } from './change-feed'
export { CHANGE_CURSOR_PATTERN, isChangeCursor } from './change-cursor'
export type { ExecutionChange } from './change-feed'
export {
  EXECUTION_STATUSES,
  TERMINAL_STATUSES,
  CANCELLABLE_STATUSES,
  RERUNNABLE_STATUSES,
  TRANSITIONS,
  isTerminalStatus,
  isExecutionStatus,
  canTransition,
} from './state-machine'
export type { ExecutionStatus, TerminalStatus, TransitionName } from './state-machine'
export {
  RatchetError,
  TerminalError,
  RetryableError,
  TimeoutError,
  CancelledError,
  ParentEndedError,
  ShutdownError,
  SuspendedError,
  LeaseExpiredError,
  RecoveriesExhaustedError,
  StorageUnavailableError,
  ValidationError,
  UnknownTaskError,
  NotFoundError,
  ConflictError,
  PayloadTooLargeError,
  DeadlineExceededError,
  NonDeterminismError,
  DuplicateStepError,
  WaitTimeoutError,
  ExecutionFailedError,
  ChildExecutionError,
  deserializeError,
  serializeError,
  isRetryable,
} from './errors'
export type { StoredError, Issue, FailedExecution } from './errors'
export { decideAfterFailure } from './attempt-outcome'
export type { FailureDecision, FailureFacts } from './attempt-outcome'
export {
  DEFAULT_RETRY_POLICY,
  MAX_ATTEMPTS_LIMIT,
  resolveRetryPolicy,
  backoffCeilingMs,
  backoffDelayMs,
} from './retry-policy'
export type { RetryPolicy, RetryPolicyInput, BackoffOptions } from './retry-policy'
export { systemClock, ManualClock } from './clock'
export type { Clock, TimerHandle } from './clock'
export { silentLogger } from './logger'
export type { Logger, LogFn } from './logger'
export { validateSchema, describeIssues, toJsonSchema } from './schema'
export type { StandardSchemaV1, StandardJSONSchemaV1, ValidationResult } from './schema'
export { serializePayload, parsePayload, DEFAULT_MAX_PAYLOAD_BYTES } from './payload'
export { newExecutionId, isExecutionId } from './ids'
export {
  Retention,
  DEFAULT_RETENTION_MS,
  MIN_RETENTION_MS,
  MAX_RETENTION_MS,
  DEFAULT_PURGE_BATCH_SIZE,
  isRetentionMs,
  checkRetentionMs,
} from './retention'
export type { RetentionMs, RetentionOptions, PurgeReport } from './retention'
export { canonicalJson, sameJson } from './canonical-json'
export type {
  Storage,
  StorageCapabilities,
  StorageNotifications,
  ExecutionRow,
  NewExecution,
  EnqueueOutcome,
  ClaimRequest,
  RunRef,
  ClaimOutcome,
  ChildOutcome,
  HousekeepOutcome,
  StatusChange,
  Settlement,
  RecoverRequest,
  RecoveredExecution,
  CancelOutcome,
  CancelledExecution,
  SettleOutcome,
  RerunOutcome,
  EventRow,
  PublishOutcome,
  ListQuery,
  HistoryRow,
  ExecutionSummaryRow,
  HistoryQuery,
  StepsQuery,
  TaskStatsRow,
  ThroughputQuery,
  ThroughputRow,
  ChangesQuery,
  ChangeRow,
  ChangeCursor,
  QueueStats,
  TaskQueueRow,
  StepRow,
  SignalRow,
  ChildState,
  RunState,
  StepWrite,
  SignalOutcome,
  StepWriteResult,
  WakeupOutcome,
  PurgeRequest,
  PurgeOutcome,
} from './storage'
export { dispatch, dispatchAwait, useExecutor, tasksOf } from './dispatch'
export type { DispatchExecutor, DispatchDefinition } from './dispatch'
export { validateEvent } from './events'
export type { PublishedEvent, RecordedEvent } from './events'
