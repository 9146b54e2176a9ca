/** Routes requests to the route files, as a serverless platform's file router would. */
import checkout from './routes/checkout'
import rpc from './routes/rpc'

export async function app(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url)
  if (pathname.startsWith('/rpc/')) return rpc(request)
  if (pathname === '/checkout') return checkout(request)
  return new Response('not found', { status: 404 })
}
