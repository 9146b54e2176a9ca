/**
 * The example end to end: the web app (its route files behind a real HTTP server) and a
 * Ratchet server running its procedures as tasks, each on an ephemeral port. The checkout
 * route enqueues the order workflow through a typed handle and waits for it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { serveFetch } from '@ratchet/orpc/node'
import { createServer, type RatchetServer } from '@ratchet/server'
import type { tasks } from '../ratchet/tasks'
import { app } from '../src/app'
import { store } from '../src/store'

const API_KEY = 'example-key-0123456789abcdef'
let web: Awaited<ReturnType<typeof serveFetch>>
let ratchet: RatchetServer
let dir: string

beforeAll(async () => {
  web = await serveFetch(app)
  dir = mkdtempSync(join(tmpdir(), 'ratchet-example-'))
  process.env.WEBAPP_URL = `${web.url}/rpc`
  // The tasks module reads WEBAPP_URL when it loads: import it after the app is up.
  const { tasks } = await import('../ratchet/tasks')
  ratchet = await createServer({
    tasks,
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    apiKeys: [{ name: 'webapp', secret: API_KEY }],
    drainMs: 500,
  })
  const { url } = await ratchet.start()
  process.env.RATCHET_URL = url
  process.env.RATCHET_API_KEY = API_KEY
})

afterAll(async () => {
  await ratchet.stop()
  await web.close()
  rmSync(dir, { recursive: true, force: true })
})

const checkout = (body: object) =>
  fetch(`${web.url}/checkout`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  })

describe('examples/webapp', () => {
  it('checkout runs the order workflow: stock reserved, card charged, receipt sent', async () => {
    const response = await checkout({ sku: 'book', quantity: 2, card: '4242', email: 'ada@example.com' })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { status: string; orderId: string; chargeId: string }
    expect(body).toMatchObject({ status: 'completed', chargeId: expect.stringMatching(/^ch_/) as string })
    expect(store.stock.get('book')).toBe(8)
    expect([...store.charges.values()].filter((c) => c.orderId === body.orderId)).toHaveLength(1)
    expect(store.emails.at(-1)).toEqual({ to: 'ada@example.com', subject: `Your order ${body.orderId}` })
  })

  it('a lost response is retried, and the idempotency key keeps it to one charge', async () => {
    const response = await checkout({
      sku: 'book',
      quantity: 1,
      card: '4000-flaky',
      email: 'bob@example.com',
    })
    const body = (await response.json()) as { status: string; orderId: string }
    expect(body.status).toBe('completed')
    expect([...store.charges.values()].filter((c) => c.orderId === body.orderId)).toHaveLength(1)
  })

  it('a declined card releases the stock and fails the order', async () => {
    const before = store.stock.get('lamp')
    const response = await checkout({
      sku: 'lamp',
      quantity: 1,
      card: '4000-declined',
      email: 'cy@example.com',
    })
    expect(response.status).toBe(402)
    expect(await response.json()).toMatchObject({ status: 'failed', error: { code: 'PAYMENT_FAILED' } })
    expect(store.stock.get('lamp')).toBe(before)
  })

  it('retrying the declined charge, then the order: the order replays its compensation, no NON_DETERMINISTIC_REPLAY', async () => {
    const ratchet = createClient<typeof tasks>({ url: process.env.RATCHET_URL!, apiKey: API_KEY })
    store.declinedCards.add('4000-fixed-later')
    const before = store.stock.get('book')
    const response = await checkout({
      sku: 'book',
      quantity: 1,
      card: '4000-fixed-later',
      email: 'di@example.com',
    })
    const { orderId } = (await response.json()) as { orderId: string }
    const [order] = (await ratchet.executions.list({ taskId: 'placeOrder', idempotencyKey: orderId })).items
    expect(order).toMatchObject({ status: 'failed', error: { code: 'PAYMENT_FAILED' } })
    const children = (await ratchet.executions.list({ parentId: order!.id })).items
    expect(children.map((c) => [c.taskId, c.status]).sort()).toEqual([
      ['chargeCard', 'failed'],
      ['releaseStock', 'completed'],
      ['reserveStock', 'completed'],
    ])

    // The card works now: the charge is retried and completes (the customer is charged).
    store.declinedCards.delete('4000-fixed-later')
    const charge = children.find((c) => c.taskId === 'chargeCard')!
    await ratchet.executions.retry(charge.id)
    expect(await ratchet.executions.wait(charge.id, { timeoutMs: 10_000 })).toMatchObject({
      status: 'completed',
    })
    // Retrying the order replays what its run did: it caught the declined charge and released
    // the stock, so it fails the same way, without running anything again.
    await ratchet.executions.retry(order!.id)
    const again = await ratchet.executions.wait(order!.id, { timeoutMs: 10_000 })
    expect(again.error?.code).not.toBe('NON_DETERMINISTIC_REPLAY')
    expect(again).toMatchObject({ status: 'failed', error: { code: 'PAYMENT_FAILED' } })
    expect((await ratchet.executions.list({ parentId: order!.id })).items).toHaveLength(3)
    expect(store.stock.get('book')).toBe(before)
    expect(store.emails.some((e) => e.to === 'di@example.com')).toBe(false)
  })

  it('the procedures refuse calls that Ratchet did not sign', async () => {
    const response = await fetch(`${web.url}/rpc/payments/charge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ json: { orderId: 'x', amountCents: 1, card: '4242' } }),
    })
    expect(response.status).toBe(401)
  })
})
