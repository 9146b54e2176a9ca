import { describe, expect, it } from 'vitest'
import { TaskRegistry } from './registry'
import type { StandardSchemaV1 } from './schema'
import { task } from './task'

const anything: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value }) },
}
const define = (id: string) => task({ id, input: anything, run: () => id })

describe('TaskRegistry', () => {
  const sendEmail = define('send-email')
  const charge = define('billing.charge')

  it('resolves a task by id and by its key in the tasks object', () => {
    const registry = new TaskRegistry({ sendEmail, charge })
    expect(registry.resolve('send-email')).toBe(sendEmail)
    expect(registry.resolve('sendEmail')).toBe(sendEmail)
    expect(registry.resolve('billing.charge')).toBe(charge)
    expect(registry.resolve('charge')).toBe(charge)
    expect(registry.resolve('nope')).toBeUndefined()
    expect(registry.get('sendEmail')).toBeUndefined()
    expect(registry.get('send-email')).toBe(sendEmail)
    expect(registry.keyFor('send-email')).toBe('sendEmail')
    expect(registry.ids()).toEqual(['send-email', 'billing.charge'])
    expect(registry.list()).toEqual([sendEmail, charge])
  })

  it('prefers an id over a key of the same name', () => {
    const a = define('a')
    const b = define('b')
    // key "a" holds task "a", key "x" holds task "b": resolve("a") is the task with id "a".
    expect(new TaskRegistry({ a, x: b }).resolve('a')).toBe(a)
  })

  it('accepts an array of tasks', () => {
    const registry = new TaskRegistry([sendEmail, charge])
    expect(registry.resolve('send-email')).toBe(sendEmail)
    expect(registry.keyFor('send-email')).toBeUndefined()
  })

  it('accepts the same task under two keys', () => {
    const registry = new TaskRegistry({ sendEmail, alsoSendEmail: sendEmail })
    expect(registry.ids()).toEqual(['send-email'])
    expect(registry.resolve('alsoSendEmail')).toBe(sendEmail)
    expect(registry.keyFor('send-email')).toBe('sendEmail')
  })

  it('rejects two different tasks with one id', () => {
    expect(() => new TaskRegistry({ a: define('same'), b: define('same') })).toThrow(
      new TypeError('two different tasks use the id "same"'),
    )
    expect(() => new TaskRegistry([define('same'), define('same')])).toThrow(
      'two different tasks use the id "same"',
    )
  })

  it('rejects a key that is the id of another task', () => {
    const a = define('a')
    const b = define('b')
    expect(() => new TaskRegistry({ a: b, b: a })).toThrow(
      new TypeError('tasks.a is task "b", but "a" is the id of another task'),
    )
    expect(() => new TaskRegistry({ first: a, a: b })).toThrow(
      'tasks.a is task "b", but "a" is the id of another task',
    )
  })

  it('rejects an entry that is not a task', () => {
    expect(() => new TaskRegistry({ sendEmail, helper: { id: 'helper' } } as never)).toThrow(
      new TypeError('tasks.helper is not a task (define it with task({ ... }))'),
    )
    expect(() => new TaskRegistry([sendEmail, 'x'] as never)).toThrow(
      new TypeError('tasks is not a task (define it with task({ ... }))'),
    )
  })
})
