export { createAppClient, createAppLink, parseRetryAfter } from './app-client'
export type { AppClientOptions, RatchetCallContext, CallResponse } from './app-client'
export { procedureTask } from './procedure-task'
export type {
  ProcedureTaskOptions,
  AnyProcedureClient,
  ProcedureInput,
  ProcedureOutput,
} from './procedure-task'
export { remoteTasks } from './remote-tasks'
export type { RemoteTaskDefinition, RemoteTasks, ProcedurePath, ProcedureAt } from './remote-tasks'
export { mapCallError, RETRYABLE_STATUSES } from './error-mapping'
export { HEADERS, MIN_SECRET_LENGTH, sign, verifySignature, canonicalString } from './signing'
export type { CallMeta } from './signing'
export { appFunctions } from './functions/app-functions'
export type { AppFunctionsOptions } from './functions/app-functions'
export { ProtocolError } from './functions/protocol'
