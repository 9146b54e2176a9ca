/** Routes requests to the route files, as a serverless platform's file router would. */
import * as functionsRoute from './routes/ratchet'
import * as signup from './routes/signup'
import * as verify from './routes/verify'

const routes: Record<string, { POST: (request: Request) => Promise<Response> }> = {
  '/api/ratchet': functionsRoute,
  '/api/signup': signup,
  '/api/verify': verify,
}

export async function app(request: Request): Promise<Response> {
  const route = routes[new URL(request.url).pathname]
  if (!route) return new Response('not found', { status: 404 })
  if (request.method !== 'POST') return new Response('method not allowed', { status: 405 })
  return route.POST(request)
}
