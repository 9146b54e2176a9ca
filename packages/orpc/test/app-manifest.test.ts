/**
 * How the server learns app functions: the signed manifest, retried while an app starts,
 * refused at once when retrying cannot help, and one namespace of ids across several apps.
 * The apps are function routes answered in process (`fetch` is the route itself).
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { appFunctions } from '@ratchet/orpc'
import { createFunctionsHandler, defineFunction } from '@ratchet/orpc/functions'

const SECRET = 'manifest-secret-0123456789abcdef012345'
const fn = (id: string) => defineFunction({ id, input: z.object({ n: z.number() }), run: ({ n }) => n })
const route = (...ids: string[]) => createFunctionsHandler(ids.map(fn), { secret: SECRET })

describe('appFunctions', () => {
  it('keeps asking while the app cannot be reached or answers 5xx, then learns its functions', async () => {
    const handler = route('a', 'b')
    const answers: (() => Promise<Response>)[] = [
      () => Promise.reject(new TypeError('fetch failed')),
      () => Promise.resolve(new Response('starting', { status: 503 })),
    ]
    const retries: string[] = []
    const tasks = await appFunctions({
      url: 'http://app.test/fns',
      secret: SECRET,
      fetch: (request) => (answers.shift() ?? (() => handler(request)))(),
      onRetry: (error, tries) => retries.push(`${tries}: ${error.message}`),
    })
    expect(Object.keys(tasks)).toEqual(['a', 'b'])
    expect(retries).toEqual([
      '1: appFunctions: cannot reach http://app.test/fns: fetch failed',
      '2: appFunctions: http://app.test/fns answered 503 to the manifest request: starting',
    ])
  })

  it('refuses at once what retrying cannot fix: a wrong secret (401)', async () => {
    const handler = createFunctionsHandler([fn('a')], { secret: 'another-secret-0123456789abcdef0123456' })
    let calls = 0
    await expect(
      appFunctions({
        url: 'http://app.test/fns',
        secret: SECRET,
        fetch: (request) => (calls++, handler(request)),
        onRetry: () => undefined,
      }),
    ).rejects.toThrow(/http:\/\/app\.test\/fns answered 401 to the manifest request/)
    expect(calls).toBe(1)
  })

  it('gives up after startupRetryMs, naming the URL', async () => {
    await expect(
      appFunctions({
        url: 'http://down.test/fns',
        secret: SECRET,
        fetch: () => Promise.reject(new TypeError('fetch failed')),
        startupRetryMs: 700,
        onRetry: () => undefined,
      }),
    ).rejects.toThrow('appFunctions: cannot reach http://down.test/fns: fetch failed')
  })

  it('several apps: one namespace of function ids', async () => {
    const shop = route('checkout', 'refund')
    const crm = route('onboard')
    const tasks = await appFunctions([
      { url: 'http://shop.test/fns', secret: SECRET, fetch: (r) => shop(r) },
      { url: 'http://crm.test/fns', secret: SECRET, fetch: (r) => crm(r) },
    ])
    expect(Object.keys(tasks).sort()).toEqual(['checkout', 'onboard', 'refund'])
    const clash = route('checkout')
    await expect(
      appFunctions([
        { url: 'http://shop.test/fns', secret: SECRET, fetch: (r) => shop(r) },
        { url: 'http://other.test/fns', secret: SECRET, fetch: (r) => clash(r) },
      ]),
    ).rejects.toThrow(
      'the function id "checkout" is offered by both http://shop.test/fns and http://other.test/fns',
    )
  })

  it('each app is a task source: loaded again once, without the start-up retries, on its own interval', async () => {
    let handler = route('a')
    let calls = 0
    const tasks = await appFunctions({
      url: 'http://app.test/fns',
      secret: SECRET,
      fetch: (request) => (calls++, handler(request)),
      refreshIntervalMs: 5_000,
    })
    const source = tasks.a!.source!
    expect(source).toMatchObject({ name: 'http://app.test/fns', refreshIntervalMs: 5_000 })
    handler = route('a', 'b')
    expect((await source.load()).map((t) => [t.id, t.source === source])).toEqual([
      ['a', true],
      ['b', true],
    ])
    handler = () => Promise.resolve(new Response('deploying', { status: 503 }))
    await expect(source.load()).rejects.toThrow('answered 503 to the manifest request: deploying')
    expect(calls).toBe(3)
    const quiet = await appFunctions({
      url: 'http://app.test/fns',
      secret: SECRET,
      fetch: (r) => route('a')(r),
      refreshIntervalMs: false,
    })
    expect(quiet.a!.source!.refreshIntervalMs).toBeUndefined()
    await expect(
      appFunctions({
        url: 'http://app.test/fns',
        secret: SECRET,
        fetch: (r) => route('a')(r),
        refreshIntervalMs: 10,
      }),
    ).rejects.toThrow(
      'appFunctions: refreshIntervalMs must be an integer of at least 1000 ms or false, got 10',
    )
  })
})
