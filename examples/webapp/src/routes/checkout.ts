/**
 * Route `POST /checkout`: starts the order workflow on Ratchet through a typed handle and
 * waits for it. The app holds no database credentials for Ratchet, only its URL and an API
 * key, and imports the tasks' types only (`import type`): no task code reaches this bundle.
 */
import { ExecutionFailedError, createClient } from '@ratchet/client'
import type { tasks } from '../../ratchet/tasks'

export default async function checkout(request: Request): Promise<Response> {
  if (request.method !== 'POST') return new Response('method not allowed', { status: 405 })
  const body = (await request.json()) as { sku: string; quantity: number; card: string; email: string }
  const ratchet = createClient<typeof tasks>({
    url: process.env.RATCHET_URL ?? 'http://127.0.0.1:8787',
    apiKey: process.env.RATCHET_API_KEY,
  })
  const orderId = `order_${crypto.randomUUID()}`
  try {
    const receipt = await ratchet.tasks.placeOrder.run(
      { orderId, ...body, amountCents: 1999 * body.quantity },
      { idempotencyKey: orderId, timeoutMs: 20_000 },
    )
    return Response.json({ status: 'completed', ...receipt })
  } catch (error) {
    if (error instanceof ExecutionFailedError)
      return Response.json({ status: error.status, orderId, error: error.error }, { status: 402 })
    throw error
  }
}
