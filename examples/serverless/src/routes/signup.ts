/** Route `POST /api/signup` `{ email }`: starts the onboarding and answers at once with its id. */
import { ORPCError } from '@ratchet/client'
import { ratchet } from '../ratchet'

export async function POST(request: Request): Promise<Response> {
  const { email } = (await request.json()) as { email: string }
  // TRIAL_MS shortens the 14-day trial, for a demo or a test.
  const trialMs = process.env.TRIAL_MS === undefined ? undefined : Number(process.env.TRIAL_MS)
  try {
    // The email as idempotency key: a double-submitted form starts one onboarding.
    const { executionId } = await ratchet().tasks.onboarding.enqueue(
      { email, trialMs },
      { idempotencyKey: email },
    )
    return Response.json({ executionId }, { status: 202 })
  } catch (error) {
    // Ratchet checked the input against the function's schema: say which field is wrong.
    if (error instanceof ORPCError && error.code === 'INVALID_INPUT')
      return Response.json({ error: error.message, details: error.data as unknown }, { status: 400 })
    throw error
  }
}
