import { pino, type Logger as PinoLogger } from 'pino'

/**
 * JSON logs on stdout. Authorization headers and anything named like a secret are
 * redacted, so API keys never reach the logs.
 */
export function createLogger(level: string): PinoLogger {
  return pino({
    level,
    base: { service: 'ratchet' },
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
  })
}
