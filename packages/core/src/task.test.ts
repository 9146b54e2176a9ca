import { describe, expect, it } from 'vitest'
import type { StandardSchemaV1 } from './schema'
import { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, isTask, task } from './task'

const anything: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value }) },
}
const run = () => null

describe('task()', () => {
  it('fills defaults and freezes the definition', () => {
    const t = task({ id: 'send-email', input: anything, run })
    expect(t).toMatchObject({
      kind: 'ratchet.task',
      id: 'send-email',
      inputSchema: anything,
      outputSchema: undefined,
      timeoutMs: DEFAULT_TIMEOUT_MS,
      retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 } },
      priority: 0,
      run,
    })
    expect(Object.isFrozen(t)).toBe(true)
    expect(isTask(t)).toBe(true)
  })

  it('keeps the given options', () => {
    const t = task({
      id: 'x',
      input: anything,
      run,
      timeoutMs: 5,
      priority: -3,
      retry: { maxAttempts: 1 },
      description: 'd',
    })
    expect(t).toMatchObject({ timeoutMs: 5, priority: -3, retry: { maxAttempts: 1 }, description: 'd' })
  })

  it.each(['a', 'sendEmail', 'a.b-c_d', 'A1', `a${'b'.repeat(127)}`])('accepts the id %j', (id) => {
    expect(task({ id, input: anything, run }).id).toBe(id)
  })

  it.each(['', '1abc', '-a', '_a', 'a b', 'a/b', 'a:b', `a${'b'.repeat(128)}`, 'é'])(
    'rejects the id %j',
    (id) => {
      expect(() => task({ id, input: anything, run })).toThrow(
        new TypeError(`task id must match /^[A-Za-z][\\w.-]{0,127}$/, got ${JSON.stringify(id)}`),
      )
    },
  )

  it.each([0, -1, 1.5, MAX_TIMEOUT_MS + 1, Number.NaN])(
    'rejects timeoutMs %s, naming the task and field',
    (timeoutMs) => {
      expect(() => task({ id: 'slow', input: anything, run, timeoutMs })).toThrow(
        new TypeError(
          `task "slow": timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS} ms, got ${String(timeoutMs)}`,
        ),
      )
    },
  )

  it.each([1001, -1001, 0.5])('rejects priority %s, naming the task and field', (priority) => {
    expect(() => task({ id: 'p', input: anything, run, priority })).toThrow(
      new TypeError(`task "p": priority must be an integer from -1000 to 1000, got ${String(priority)}`),
    )
  })

  it('rejects a bad retry policy, naming the task and field', () => {
    expect(() => task({ id: 'r', input: anything, run, retry: { maxAttempts: 0 } })).toThrow(
      /^task "r": retry\.maxAttempts must be/,
    )
  })

  it('rejects an input that is not a Standard Schema, and a missing run', () => {
    expect(() => task({ id: 'i', input: {} as StandardSchemaV1, run })).toThrow(
      'task "i": input must be a Standard Schema',
    )
    expect(() => task({ id: 'f', input: anything, run: undefined as unknown as () => null })).toThrow(
      'task "f": run must be a function',
    )
  })

  it('isTask rejects look-alikes', () => {
    for (const value of [null, undefined, 'task', { id: 'x', run }, { kind: 'task' }])
      expect(isTask(value)).toBe(false)
  })
})
