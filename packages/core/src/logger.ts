/**
 * The logging port. pino's `Logger` satisfies it structurally; core never imports pino.
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
