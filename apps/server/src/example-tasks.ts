/**
 * The example tasks the server runs when RATCHET_TASKS is not set. A tasks module exports
 * its tasks as one object; point RATCHET_TASKS at your own module to run yours.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { z } from 'zod'
import { RetryableError, TerminalError, task } from '@ratchet/core'

/** Fails on its first attempt, as mail providers do under load, then succeeds. */
export const sendWelcomeEmail = task({
  id: 'send-welcome-email',
  description: 'Sends a welcome email; the provider answers "try again later" on the first attempt.',
  input: z.object({ userId: z.string().min(1), email: z.email() }),
  timeoutMs: 10_000,
  retry: { maxAttempts: 5, backoff: { initialMs: 200, factor: 2, maxMs: 5_000 } },
  run: async ({ userId, email }, ctx) => {
    if (ctx.attempt === 1)
      throw new RetryableError('mail provider answered 421: try again later', { retryAfterMs: 250 })
    await delay(20, undefined, { signal: ctx.signal })
    ctx.logger.info({ userId }, 'welcome email sent')
    return { messageId: `msg-${ctx.executionId.slice(-12)}`, to: email }
  },
})

/** Takes a few seconds, in chunks, and stops as soon as it is cancelled or times out. */
export const generateReport = task({
  id: 'generate-report',
  description: 'Builds a monthly report in chunks of work (about 0.4 s each).',
  input: z.object({
    accountId: z.string().min(1),
    month: z.string().regex(/^\d{4}-\d{2}$/, 'expected YYYY-MM'),
    chunks: z.number().int().min(1).max(100).default(5),
  }),
  timeoutMs: 60_000,
  retry: { maxAttempts: 3 },
  run: async ({ accountId, month, chunks }, ctx) => {
    let rows = 0
    for (let chunk = 1; chunk <= chunks; chunk++) {
      await delay(400, undefined, { signal: ctx.signal })
      rows += 250
      ctx.logger.debug({ chunk, chunks }, 'report chunk done')
    }
    return { accountId, month, rows, url: `https://reports.example.com/${accountId}/${month}.csv` }
  },
})

/** A declined card is final: TerminalError fails the execution without retrying. */
export const chargeInvoice = task({
  id: 'charge-invoice',
  description: 'Charges an invoice; amounts above 10 000 are declined (a terminal error).',
  input: z.object({ invoiceId: z.string().min(1), amountCents: z.number().int().positive() }),
  timeoutMs: 15_000,
  retry: { maxAttempts: 4, backoff: { initialMs: 500, factor: 3, maxMs: 10_000 } },
  run: ({ invoiceId, amountCents }) => {
    if (amountCents > 1_000_000)
      throw new TerminalError(`card declined for invoice ${invoiceId}`, { code: 'CARD_DECLINED' })
    return { invoiceId, chargedCents: amountCents, chargeId: `ch-${invoiceId}` }
  },
})

export const tasks = { sendWelcomeEmail, generateReport, chargeInvoice }
