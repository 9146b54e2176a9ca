import { serializeError, type StoredError } from '@ratchet/core'
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'

/** An error in a log line: its class as `type`, then what Ratchet stores of an error. */
export interface LoggedError {
  type: string
  message: string
  code?: string
  retryable?: boolean
  stack?: string
  data?: Record<string, unknown>
  cause?: LoggedError
}

/**
 * JSON logs on stdout (or `destination`). Authorization headers and anything named like a
 * secret are redacted, so API keys never reach the logs. Errors under `err` have one shape,
 * {@link LoggedError}, whether the code logged an `Error` or a stored error.
 */
export function createLogger(level: string, destination?: DestinationStream): PinoLogger {
  const options = {
    level,
    base: { service: 'ratchet' },
    serializers: { err: logError },
    redact: {
      paths: [
        'authorization',
        'headers.authorization',
        'req.headers.authorization',
        'apiKey',
        'secret',
        '*.apiKey',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  }
  return destination ? pino(options, destination) : pino(options)
}

/**
 * pino's own `err` serializer names the constructor, so a stored error (a plain object) came
 * out as `"type":"Object"`. This one takes an `Error` or a `StoredError` (what the engine
 * logs) and gives both as a {@link LoggedError}; anything else is left as it is.
 */
export function logError(value: unknown): unknown {
  if (value instanceof Error) return fromStored(serializeError(value))
  if (isStoredError(value)) return fromStored(value)
  return value
}

function fromStored({ name, cause, ...rest }: StoredError): LoggedError {
  return { type: name, ...rest, ...(cause !== undefined ? { cause: fromStored(cause) } : {}) }
}

function isStoredError(value: unknown): value is StoredError {
  if (typeof value !== 'object' || value === null) return false
  const { name, message } = value as Record<string, unknown>
  return typeof name === 'string' && typeof message === 'string'
}
