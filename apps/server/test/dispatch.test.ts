/**
 * Decorated methods: the same class runs on a LocalExecutor (in this process) and on a real
 * Ratchet server through the client; switching is one `useExecutor` line.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createClient, remoteExecutor } from '@ratchet/client'
import {
  ExecutionFailedError,
  TerminalError,
  dispatch,
  dispatchAwait,
  tasksOf,
  useExecutor,
  type TaskContext,
} from '@ratchet/core'
import { LocalExecutor } from '@ratchet/testing'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

/** Who was notified, across every instance and executor (the task bodies run elsewhere). */
const notified: string[] = []

class Billing {
  @dispatchAwait({ id: 'billing.total', input: z.object({ items: z.array(z.number()) }) })
  async total(input: { items: number[] }, ctx?: TaskContext): Promise<number> {
    // A durable step: the body runs as a task, with a context.
    return ctx!.step('sum', () => input.items.reduce((sum, n) => sum + n, 0))
  }

  @dispatch({ id: 'billing.notify', input: z.object({ to: z.string() }) })
  async notify(input: { to: string }): Promise<void> {
    notified.push(input.to)
    return Promise.resolve()
  }

  @dispatchAwait({ id: 'billing.refuse', input: z.object({}), retry: { maxAttempts: 1 } })
  async refuse(_input: Record<string, never>): Promise<string> {
    return Promise.reject(new TerminalError('refused', { code: 'REFUSED' }))
  }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

const executors = {
  local: () => {
    const local = new LocalExecutor({ instances: [new Billing()] })
    cleanups.push(() => local.close())
    return local
  },
  remote: async () => {
    const server: TestServer = await startTestServer(tasksOf(new Billing()))
    cleanups.push(() => server.close())
    return remoteExecutor(createClient({ url: server.url, apiKey: API_KEY }))
  },
}

describe.each(Object.entries(executors))('decorated methods on the %s executor', (_name, make) => {
  it('@dispatchAwait returns the output; @dispatch enqueues and returns; failures reject', async () => {
    useExecutor(await make())
    const billing = new Billing() // the caller's instance: its calls are routed, not run here
    expect(await billing.total({ items: [1, 2, 3] })).toBe(6)

    const to = `ada-${_name}`
    await expect(billing.notify({ to })).resolves.toBeUndefined()
    await until(
      () => notified.includes(to),
      (seen) => seen,
    )

    const refused = billing.refuse({})
    await expect(refused).rejects.toMatchObject({ status: 'failed', error: { code: 'REFUSED' } })
    // one class whichever executor ran it
    await expect(refused).rejects.toBeInstanceOf(ExecutionFailedError)
  })
})

describe('dispatch', () => {
  it('tasksOf refuses an object without decorated methods', () => {
    expect(() => tasksOf({})).toThrow('tasksOf: the object has no @dispatch or @dispatchAwait methods')
  })
})
