/** A web app's oRPC router for the tests: procedures that answer, fail by status, or hang. */
import { ORPCError, os } from '@orpc/server'
import { z } from 'zod'
import type { RatchetHandlerContext } from '@ratchet/orpc/app'

const base = os.$context<RatchetHandlerContext>()

/** Every call that reached a procedure, in order. */
export const calls: { procedure: string; executionId: string; attempt: number; idempotencyKey: string }[] = []
/** Execution ids whose in-flight call the app saw aborted. */
export const aborted = new Set<string>()
const counts = new Map<string, number>()

function seen(procedure: string, context: RatchetHandlerContext) {
  const { executionId, attempt, idempotencyKey } = context.ratchet
  calls.push({ procedure, executionId, attempt, idempotencyKey })
}

export const appRouter = {
  echo: {
    say: base.input(z.object({ text: z.string() })).handler(({ input, context }) => {
      seen('echo.say', context)
      const { executionId, attempt, idempotencyKey } = context.ratchet
      return { said: input.text, executionId, attempt, idempotencyKey }
    }),
  },
  fail: {
    /** Fails with `status` on its first `times` calls for `key`, then answers. */
    withStatus: base
      .input(
        z.object({
          status: z.number().int(),
          times: z.number().int(),
          key: z.string(),
          retryAfter: z.string().optional(),
        }),
      )
      .handler(({ input, context }) => {
        seen('fail.withStatus', context)
        const n = (counts.get(input.key) ?? 0) + 1
        counts.set(input.key, n)
        if (n <= input.times) {
          if (input.retryAfter) context.resHeaders?.set('retry-after', input.retryAfter)
          throw new ORPCError(`STATUS_${input.status}`, {
            status: input.status,
            message: `failing with ${input.status}`,
          })
        }
        return { ok: true as const, calls: n }
      }),
  },
  misc: {
    /** A key that needs percent-encoding in the URL. */
    'send mail': base.input(z.object({})).handler(({ context }) => {
      seen('misc.send mail', context)
      return { ok: true as const }
    }),
  },
  slow: {
    /** Never answers; records when the caller goes away. */
    hang: base.input(z.object({})).handler(
      ({ context }) =>
        new Promise<never>((_, reject) => {
          seen('slow.hang', context)
          context.request.signal.addEventListener('abort', () => {
            aborted.add(context.ratchet.executionId)
            reject(new Error('the caller went away'))
          })
        }),
    ),
  },
}

export type AppRouter = typeof appRouter
