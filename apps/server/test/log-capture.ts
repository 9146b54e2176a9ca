import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'

/** A debug-level pino logger whose JSON lines the test can read back, parsed and raw. */
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
  return { logger: pino({ level: 'debug' }, stream), lines, raw: () => raw }
}
