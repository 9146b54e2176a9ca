/** Route `POST /api/verify` `{ executionId }`: the link in the verification email lands here. */
import { ratchet } from '../ratchet'

export async function POST(request: Request): Promise<Response> {
  const { executionId } = (await request.json()) as { executionId: string }
  await ratchet().executions.signal(executionId, 'email-verified', { at: Date.now() })
  return Response.json({ ok: true })
}
