/**
 * The web app's data, in memory for the example (a real app has its own database). Every
 * write is keyed by the idempotency key of the Ratchet call that made it, so a retried call
 * returns what the first one did instead of doing it twice.
 */
export interface Charge {
  chargeId: string
  orderId: string
  amountCents: number
}

export const store = {
  stock: new Map<string, number>([
    ['book', 10],
    ['lamp', 2],
  ]),
  /** Reservations by order id. */
  reservations: new Map<string, { sku: string; quantity: number }>(),
  /** Charges by idempotency key. */
  charges: new Map<string, Charge>(),
  emails: [] as { to: string; subject: string }[],
  /** Cards whose first charge call "loses its response": charged, then answered 503. */
  flakyCards: new Set<string>(['4000-flaky']),
  declinedCards: new Set<string>(['4000-declined']),
}
