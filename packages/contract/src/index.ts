export { contract } from './contract'
export type { Contract } from './contract'
export { errorMap, base } from './errors'
export type { ErrorCode } from './errors'
export {
  executionStatusSchema,
  storedErrorSchema,
  issueSchema,
  executionIdSchema,
  executionSchema,
  enqueueOptionsSchema,
  enqueueInputSchema,
  enqueueOutputSchema,
  listInputSchema,
  listOutputSchema,
  historyEventSchema,
  waitInputSchema,
  watchInputSchema,
  watchEventSchema,
  signalInputSchema,
  wakeupInputSchema,
  taskInfoSchema,
  backoffSchema,
  MAX_WAIT_REQUEST_MS,
} from './schemas'
export type {
  ExecutionStatus,
  StoredError,
  Issue,
  Execution,
  EnqueueOptions,
  EnqueueInput,
  ListInput,
  HistoryEvent,
  TaskInfo,
  SignalInput,
  WakeupInput,
  WatchEvent,
} from './schemas'
