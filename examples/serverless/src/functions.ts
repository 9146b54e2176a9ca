/**
 * The app's durable functions. They run inside this app, one short invocation at a time, and
 * Ratchet keeps their state: a serverless limit, a crash or a deploy never loses a step.
 */
import { z } from 'zod'
import { defineFunction, TerminalError } from '@ratchet/orpc/functions'
import { store } from './store'

const DAY = 86_400_000

/** One email, once per execution and kind (the step may run again if its answer is lost). */
function sendEmail(executionId: string, to: string, kind: 'verify' | 'welcome' | 'trial-ended') {
  const key = `${executionId}:${kind}`
  if (!store.emails.has(key)) store.emails.set(key, { to, kind })
  return { sent: kind }
}

/** A welcome email: its own function, started as a child of the onboarding. */
export const welcome = defineFunction({
  id: 'welcome',
  input: z.object({ email: z.string() }),
  mode: 'isolated',
  run: async ({ email }, ctx) => ctx.step('send', () => sendEmail(ctx.executionId, email, 'welcome')),
})

/**
 * Sign-up onboarding: create the account, ask for email verification (up to 7 days), welcome
 * the user, then email again when the trial ends. Every step is recorded by Ratchet.
 */
export const onboarding = defineFunction({
  id: 'onboarding',
  input: z.object({
    email: z.email(),
    trialMs: z
      .number()
      .int()
      .min(0)
      .default(14 * DAY),
  }),
  output: z.object({ accountId: z.string(), verified: z.boolean() }),
  mode: 'sequential',
  // Vercel's Hobby limit is 10 s: no new step starts after 8.
  maxInvocationMs: 8_000,
  retry: { maxAttempts: 5, backoff: { initialMs: 500, factor: 2, maxMs: 30_000 } },
  run: async ({ email, trialMs }, ctx) => {
    const accountId = await ctx.step('create-account', () => {
      const existing = store.accounts.get(email)
      if (existing && existing.accountId !== `acct_${ctx.executionId}`)
        throw new TerminalError(`${email} already has an account`, { code: 'ACCOUNT_EXISTS' })
      store.accounts.set(email, { accountId: `acct_${ctx.executionId}`, email, verified: false })
      return `acct_${ctx.executionId}`
    })
    await ctx.step('send-verification', () => sendEmail(ctx.executionId, email, 'verify'))
    try {
      await ctx.waitForSignal('email-verified', { timeoutMs: 7 * DAY })
    } catch {
      await ctx.step('remove-unverified', () => store.accounts.delete(email))
      return { accountId, verified: false }
    }
    await ctx.step('mark-verified', () => {
      store.accounts.set(email, { accountId, email, verified: true })
    })
    await ctx.child('welcome', welcome, { email })
    await ctx.sleep('trial', trialMs)
    await ctx.step('trial-ended', () => sendEmail(ctx.executionId, email, 'trial-ended'))
    return { accountId, verified: true }
  },
})

export const functions = { onboarding, welcome }
