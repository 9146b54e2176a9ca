/**
 * `@ratchet/orpc/functions`: durable functions hosted by a web app. Runs on Node, edge and
 * serverless runtimes (Web APIs only).
 */
export { defineFunction } from './define'
export type { AppFunction, AnyAppFunction, FunctionDefinition } from './define'
export { createFunctionsHandler } from './handler'
export type { FunctionsHandlerOptions } from './handler'
export type { FunctionContext, ChildTarget } from './app-context'
export { TerminalError, RetryableError } from '@ratchet/core/errors'
export type { ExecutionMode } from './protocol'
export { DEFAULT_MAX_INVOCATION_MS } from './protocol'
