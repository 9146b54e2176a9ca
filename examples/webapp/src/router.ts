/**
 * The procedures Ratchet calls, as an ordinary oRPC router. `context.ratchet` holds the
 * verified execution id, attempt and idempotency key of each call (see routes/rpc.ts).
 */
import { ORPCError, os } from '@orpc/server'
import { z } from 'zod'
import type { RatchetHandlerContext } from '@ratchet/orpc/app'
import { store } from './store'

const base = os.$context<RatchetHandlerContext>()

export const router = {
  inventory: {
    reserve: base
      .input(z.object({ orderId: z.string(), sku: z.string(), quantity: z.number().int().positive() }))
      .handler(({ input }) => {
        if (store.reservations.has(input.orderId)) return { reserved: true as const } // a retry
        const left = store.stock.get(input.sku) ?? 0
        if (left < input.quantity)
          throw new ORPCError('OUT_OF_STOCK', { status: 409, message: `only ${left} ${input.sku} left` })
        store.stock.set(input.sku, left - input.quantity)
        store.reservations.set(input.orderId, { sku: input.sku, quantity: input.quantity })
        return { reserved: true as const }
      }),
    release: base.input(z.object({ orderId: z.string() })).handler(({ input }) => {
      const reservation = store.reservations.get(input.orderId)
      if (reservation) {
        store.stock.set(reservation.sku, (store.stock.get(reservation.sku) ?? 0) + reservation.quantity)
        store.reservations.delete(input.orderId)
      }
      return { released: true as const }
    }),
  },
  payments: {
    charge: base
      .input(z.object({ orderId: z.string(), amountCents: z.number().int().positive(), card: z.string() }))
      .handler(({ input, context }) => {
        if (store.declinedCards.has(input.card))
          throw new ORPCError('CARD_DECLINED', { status: 402, message: 'the card was declined' })
        const key = context.ratchet.idempotencyKey
        let charge = store.charges.get(key)
        if (!charge) {
          charge = {
            chargeId: `ch_${store.charges.size + 1}`,
            orderId: input.orderId,
            amountCents: input.amountCents,
          }
          store.charges.set(key, charge)
          if (store.flakyCards.delete(input.card)) {
            // Charged, but the answer is lost: Ratchet retries, and the key makes it safe.
            throw new ORPCError('UNAVAILABLE', { status: 503, message: 'upstream hiccup' })
          }
        }
        return { chargeId: charge.chargeId }
      }),
  },
  email: {
    send: base.input(z.object({ to: z.email(), subject: z.string() })).handler(({ input }) => {
      store.emails.push(input)
      return { sent: true as const }
    }),
  },
}

export type Router = typeof router
