import { describe, expect, it } from 'vitest'
import { ManualClock } from './clock'
import { StorageUnavailableError } from './errors'
import type { Logger } from './logger'
import { StorageHealth } from './storage-health'

function capture() {
  const lines: { level: string; msg: string | undefined }[] = []
  const at = (level: string) => (_obj: Record<string, unknown>, msg?: string) =>
    void lines.push({ level, msg })
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  }
  return { logger, lines }
}

describe('StorageHealth: the outage log', () => {
  it('one error line per outage; a flapping connection (a success between failures) within a minute is a warning; a later outage an error again', () => {
    const clock = new ManualClock(0)
    const { logger, lines } = capture()
    const health = new StorageHealth(clock, logger, undefined)
    const down = new StorageUnavailableError()

    health.failed('claim', down, 'claim failed')
    health.failed('settle', down, 'settle failed')
    expect(health.unavailable).toBe(true)
    clock.advance(100)
    health.ok() // a call got through on a connection not yet terminated
    clock.advance(100)
    health.failed('claim', down, 'claim failed')
    health.ok()
    expect(lines.map((l) => l.level)).toEqual(['error', 'debug', 'info', 'warn', 'info'])
    expect(lines[3]!.msg).toMatch(/^storage unreachable again/)

    clock.advance(60_000)
    health.failed('claim', down, 'claim failed')
    expect(lines.at(-1)).toMatchObject({
      level: 'error',
      msg: expect.stringMatching(/^storage unreachable:/) as string,
    })
  })

  it('a failure that is not an outage is an error line each time, and does not open an outage', () => {
    const { logger, lines } = capture()
    const health = new StorageHealth(new ManualClock(0), logger, undefined)
    health.failed('settle', new Error('disk I/O error'), 'writing an attempt result failed')
    health.failed('settle', new Error('disk I/O error'), 'writing an attempt result failed')
    expect(lines.map((l) => l.level)).toEqual(['error', 'error'])
    expect(health.unavailable).toBe(false)
    expect(health.failure?.message).toBe('disk I/O error')
  })
})
