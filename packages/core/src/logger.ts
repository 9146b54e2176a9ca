import { serializeError, type StoredError } from './errors'

/**
 * The logging port. pino's `Logger` satisfies it structurally; core never imports pino.
 *
 * Errors go under `err`, as {@link serializeError} gives them (a `StoredError`: `name`,
 * `message`, `code`, `retryable`, `stack`, `cause`, `data`); the server's pino logger prints
 * them with their class as `type` (see apps/server/src/logger.ts).
 */
export interface LogFn {
  (obj: Record<string, unknown>, msg?: string): void
}

export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  child(bindings: Record<string, unknown>): Logger
  /** Whether lines at `level` are written (pino has it). Without it, debug is taken as off. */
  isLevelEnabled?(level: string): boolean
}

const noop = () => {}

/** Discards everything. The default when no logger is given. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
}

/**
 * The `err` of a line about a planned retry (an expected failure, logged at warn): the error
 * without its stacks, unless `logger` writes debug lines.
 */
export function errorForRetryLog(error: unknown, logger: Logger): StoredError {
  const stored = serializeError(error)
  return logger.isLevelEnabled?.('debug') === true ? stored : withoutStacks(stored)
}

function withoutStacks({ stack: _stack, cause, ...rest }: StoredError): StoredError {
  return cause === undefined ? rest : { ...rest, cause: withoutStacks(cause) }
}
