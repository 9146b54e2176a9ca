/**
 * The Ratchet server's tasks module for the example (RATCHET_TASKS): the web app's
 * procedures as remote tasks, typed from its router, and the order workflow that chains them.
 */
import type { RouterClient } from '@orpc/server'
import { z } from 'zod'
import { TerminalError, task } from '@ratchet/core'
import { createAppClient, remoteTasks, type RatchetCallContext } from '@ratchet/orpc'
import type { Router } from '../src/router'

const shop = createAppClient<RouterClient<Router, RatchetCallContext>>({
  url: process.env.WEBAPP_URL ?? 'http://127.0.0.1:3000/rpc',
  secret: process.env.WEBAPP_SECRET ?? 'dev-secret-change-me-0123456789abcdef',
})

const retry = { maxAttempts: 5, backoff: { initialMs: 50, factor: 2, maxMs: 2_000 } }

const remote = remoteTasks(shop, {
  reserveStock: { procedure: 'inventory.reserve', timeoutMs: 5_000, retry },
  releaseStock: { procedure: 'inventory.release', timeoutMs: 5_000, retry },
  chargeCard: { procedure: 'payments.charge', timeoutMs: 10_000, retry },
  sendReceipt: { procedure: 'email.send', timeoutMs: 5_000, retry },
})

/**
 * Reserve, charge, email. A declined card releases the reservation and fails the order;
 * every step is a child execution, so a crash or deploy resumes after the last one done.
 */
export const placeOrder = task({
  id: 'placeOrder',
  input: z.object({
    orderId: z.string(),
    sku: z.string(),
    quantity: z.number().int().positive(),
    amountCents: z.number().int().positive(),
    card: z.string(),
    email: z.email(),
  }),
  retry: { maxAttempts: 3 },
  run: async (order, ctx) => {
    await ctx.child('reserve', remote.reserveStock, {
      orderId: order.orderId,
      sku: order.sku,
      quantity: order.quantity,
    })
    let chargeId: string
    try {
      ;({ chargeId } = await ctx.child('charge', remote.chargeCard, {
        orderId: order.orderId,
        amountCents: order.amountCents,
        card: order.card,
      }))
    } catch (error) {
      await ctx.child('release', remote.releaseStock, { orderId: order.orderId })
      throw new TerminalError('the payment failed; the stock was released', {
        code: 'PAYMENT_FAILED',
        cause: error,
      })
    }
    await ctx.child('receipt', remote.sendReceipt, {
      to: order.email,
      subject: `Your order ${order.orderId}`,
    })
    return { orderId: order.orderId, chargeId }
  },
})

export const tasks = { ...remote, placeOrder }
