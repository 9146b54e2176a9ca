import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createLogger } from '../src/logger'

/**
 * The production logger (its serializers and redaction) at debug level, writing JSON lines the
 * test can read back, parsed and raw.
 */
export function captureLogger(): {
  logger: Logger
  lines: Record<string, unknown>[]
  raw: () => string
} {
  const lines: Record<string, unknown>[] = []
  let raw = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw += chunk.toString()
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { logger: createLogger('debug', stream), lines, raw: () => raw }
}
