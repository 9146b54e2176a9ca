/**
 * Task sources (the functions web apps host) loaded again while the engine runs: on demand,
 * for an enqueue of an unknown id (throttled), and on each source's interval. All or nothing.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  declareTaskSource,
  task,
  TaskRegistry,
  TaskSourceError,
  UNKNOWN_ID_REFRESH_MS,
  UnknownTaskError,
  type AnyTask,
  type TaskSource,
} from '@ratchet/core'
import { openEngine } from './open-engine'

/** A source whose offer a test changes between loads; counts its loads. */
function fakeSource(name: string, refreshIntervalMs?: number) {
  const state = {
    offer: [] as AnyTask[],
    failWith: undefined as Error | undefined,
    loads: 0,
    /** When set, each load waits for its own call of `release` (in the order loads began). */
    held: undefined as ((offer: AnyTask[]) => void)[] | undefined,
  }
  const source: TaskSource = {
    kind: 'ratchet.taskSource',
    name,
    refreshIntervalMs,
    load: () => {
      state.loads++
      if (state.held) return new Promise<AnyTask[]>((resolve) => state.held!.push(resolve))
      return state.failWith ? Promise.reject(state.failWith) : Promise.resolve(state.offer)
    },
  }
  const define = (id: string, max = 100, output = id) =>
    task({ id, input: z.object({ n: z.number().max(max) }), run: () => output, source })
  return { source, state, define }
}

const local = task({ id: 'local', input: z.null(), run: () => 'local' })

describe('TaskRegistry.replaceFromSources', () => {
  it('adds new ids, replaces the source’s own, and keeps what it no longer offers as missing', () => {
    const app = fakeSource('http://app')
    const registry = new TaskRegistry({ local, a: app.define('a'), b: app.define('b') })
    const version = registry.version
    const a2 = app.define('a', 5)
    const [result] = registry.replaceFromSources([{ source: app.source, tasks: [a2, app.define('c')] }])
    expect(result).toMatchObject({ added: ['c'], updated: ['a'], missing: ['b'] })
    expect(registry.get('a')).toBe(a2)
    expect(registry.resolve('c')?.id).toBe('c')
    expect(registry.get('b')).toBeDefined()
    expect(registry.version).toBe(version + 1)
    expect(registry.sources()).toEqual([app.source])
  })

  it('refuses, changing nothing, an id of the tasks module or of another source', () => {
    const app = fakeSource('http://app')
    const other = fakeSource('http://other')
    const registry = new TaskRegistry({ local, a: app.define('a') })
    expect(() =>
      registry.replaceFromSources([{ source: app.source, tasks: [app.define('b'), app.define('local')] }]),
    ).toThrow('http://app: the id "local" is already taken by a task of the tasks module')
    expect(() =>
      registry.replaceFromSources([
        { source: app.source, tasks: [app.define('x')] },
        { source: other.source, tasks: [other.define('x')] },
      ]),
    ).toThrow('the id "x" is offered by both http://app and http://other')
    expect(registry.ids()).toEqual(['local', 'a'])
  })
})

describe('Engine.refreshTasks', () => {
  it('a function added by the app is enqueued and run without a restart; a changed schema applies at once', async () => {
    const app = fakeSource('http://app')
    const { engine } = openEngine({ local, a: app.define('a') })
    app.state.offer = [app.define('a', 5), app.define('b', 100, 'b ran')]
    expect(await engine.refreshTasks()).toEqual({
      sources: [{ name: 'http://app', added: ['b'], updated: ['a'], missing: [] }],
    })
    await expect(engine.enqueue('a', { n: 10 })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    const { execution } = await engine.enqueue('b', { n: 1 })
    while ((await engine.executor.tick()).claimed > 0);
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'b ran' })
  })

  it('all or nothing: one source that cannot be loaded registers nothing from the others', async () => {
    const app = fakeSource('http://app')
    const down = fakeSource('http://down')
    const { engine } = openEngine({ a: app.define('a'), d: down.define('d') })
    app.state.offer = [app.define('a'), app.define('new')]
    down.state.failWith = new Error('connect ECONNREFUSED')
    const error: unknown = await engine.refreshTasks().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TaskSourceError)
    expect(error).toMatchObject({
      sourceName: 'http://down',
      message: 'cannot load the tasks of http://down: connect ECONNREFUSED',
    })
    expect(engine.registry.get('new')).toBeUndefined()
  })

  it('with no sources, resolves with none', async () => {
    const { engine } = openEngine({ local })
    expect(await engine.refreshTasks()).toEqual({ sources: [] })
  })
})

describe('what an app offers over time', () => {
  it('an app with no functions yet is still a source: its first function is learned on refresh', async () => {
    const app = fakeSource('http://empty')
    const { engine } = openEngine(declareTaskSource({ local }, app.source))
    expect(engine.registry.sources()).toEqual([app.source])
    app.state.offer = [app.define('first')]
    expect((await engine.refreshTasks()).sources[0]!.added).toEqual(['first'])
    expect((await engine.enqueue('first', { n: 1 })).created).toBe(true)
  })

  it('a function the app no longer offers takes no new executions, but its runs still find it', async () => {
    const app = fakeSource('http://app')
    const gone = app.define('gone')
    const { engine } = openEngine({ gone, kept: app.define('kept') })
    const { execution } = await engine.enqueue('gone', { n: 1 })
    app.state.offer = [app.define('kept')]
    expect((await engine.refreshTasks()).sources[0]!.missing).toEqual(['gone'])
    await expect(engine.enqueue('gone', { n: 2 })).rejects.toMatchObject({
      code: 'UNKNOWN_TASK',
      knownTaskIds: ['kept'],
    })
    while ((await engine.executor.tick()).claimed > 0);
    expect(await engine.get(execution.id)).toMatchObject({ status: 'completed', output: 'gone' })
    // Offered again: enqueues are taken again.
    app.state.offer = [app.define('kept'), app.define('gone')]
    await engine.refreshTasks()
    expect((await engine.enqueue('gone', { n: 3 })).created).toBe(true)
  })

  it('an id taken by the tasks module is a conflict, not an outage', async () => {
    const app = fakeSource('http://app')
    const { engine } = openEngine({ local, a: app.define('a') })
    app.state.offer = [app.define('local')]
    await expect(engine.refreshTasks()).rejects.toMatchObject({ name: 'TaskSourceError', conflict: true })
  })

  it('a load that began earlier but ended later does not undo a newer one', async () => {
    const app = fakeSource('http://app', 60_000)
    const { engine, clock } = openEngine({ a: app.define('a') })
    engine.start()
    app.state.held = []
    clock.advance(60_000) // the interval's load begins, and hangs
    const onDemand = engine.refreshTasks() // a newer load
    await new Promise((resolve) => setImmediate(resolve))
    const [older, newer] = app.state.held
    newer!([app.define('a', 5), app.define('b')])
    await onDemand
    older!([app.define('a')])
    await new Promise((resolve) => setImmediate(resolve))
    expect(engine.registry.get('b')).toBeDefined()
    await expect(engine.enqueue('a', { n: 10 })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    app.state.held = undefined
    const stopping = engine.stop({ drainMs: 0 })
    clock.advance(0)
    await stopping
  })
})

describe('an enqueue of an unknown id', () => {
  it('loads the sources again, at most once per UNKNOWN_ID_REFRESH_MS, then enqueues or fails as before', async () => {
    const app = fakeSource('http://app')
    const { engine, clock } = openEngine({ a: app.define('a') })
    app.state.offer = [app.define('a')]
    await expect(engine.enqueue('typo', { n: 1 })).rejects.toBeInstanceOf(UnknownTaskError)
    expect(app.state.loads).toBe(1)
    // Deployed meanwhile, but inside the throttle window: no load, still unknown.
    app.state.offer = [app.define('a'), app.define('fresh')]
    await expect(engine.enqueue('fresh', { n: 1 })).rejects.toBeInstanceOf(UnknownTaskError)
    expect(app.state.loads).toBe(1)
    clock.advance(UNKNOWN_ID_REFRESH_MS)
    const { execution } = await engine.enqueue('fresh', { n: 1 })
    expect(execution.taskId).toBe('fresh')
    expect(app.state.loads).toBe(2)
  })

  it('a failing source leaves the UNKNOWN_TASK error as it was', async () => {
    const app = fakeSource('http://app')
    const { engine } = openEngine({ a: app.define('a') })
    app.state.failWith = new Error('503')
    await expect(engine.enqueue('fresh', { n: 1 })).rejects.toMatchObject({
      code: 'UNKNOWN_TASK',
      taskId: 'fresh',
    })
  })

  it('a server with no sources never loads anything', async () => {
    const { engine } = openEngine({ local })
    await expect(engine.enqueue('typo', null)).rejects.toBeInstanceOf(UnknownTaskError)
  })
})

describe('refreshIntervalMs', () => {
  it('a started engine loads each source on its interval; a failed load is retried at the next; stop ends it', async () => {
    const app = fakeSource('http://app', 60_000)
    const manual = fakeSource('http://manual')
    const { engine, clock } = openEngine({ a: app.define('a'), m: manual.define('m') })
    engine.start()
    app.state.offer = [app.define('a'), app.define('b')]
    clock.advance(59_999)
    await Promise.resolve()
    expect(app.state.loads).toBe(0)
    clock.advance(1)
    await new Promise((resolve) => setImmediate(resolve))
    expect(app.state.loads).toBe(1)
    expect(engine.registry.get('b')).toBeDefined()
    app.state.failWith = new Error('down')
    clock.advance(60_000)
    await new Promise((resolve) => setImmediate(resolve))
    expect(app.state.loads).toBe(2)
    app.state.failWith = undefined
    clock.advance(60_000)
    await new Promise((resolve) => setImmediate(resolve))
    expect(app.state.loads).toBe(3)
    expect(manual.state.loads).toBe(0)
    const stopping = engine.stop({ drainMs: 0 })
    clock.advance(0)
    await stopping
    clock.advance(120_000)
    await new Promise((resolve) => setImmediate(resolve))
    expect(app.state.loads).toBe(3)
  })
})
