import { createORPCClient, ORPCError } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import type { ContractRouterClient } from '@orpc/contract'
import { createTanstackQueryUtils } from '@orpc/tanstack-query'
import type { Contract } from '@ratchet/contract'
import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query'

/**
 * The dashboard talks to the server it was loaded from: oRPC over `/rpc` (typed by the
 * contract; dates and other types survive the RPC serializer), authenticated by the HttpOnly
 * session cookie the browser sends by itself. Every request carries the CSRF token read from
 * `/auth/session` (the server requires it on anything but GET/HEAD).
 */

export interface SessionInfo {
  authRequired: boolean
  apiKeyName: string | null
  csrfToken: string | null
  expiresAt: string | null
}

let csrfToken: string | null = null

const link = new RPCLink({
  url: `${window.location.origin}/rpc`,
  headers: () => (csrfToken ? { 'x-ratchet-csrf': csrfToken } : {}),
  fetch: (request, init) => fetch(request, { ...init, credentials: 'same-origin' }),
})

export const client: ContractRouterClient<Contract> = createORPCClient(link)
export const orpc = createTanstackQueryUtils(client)

/** A 401 from the API: the session expired or was never there; the app shows the login form. */
export const isUnauthorized = (error: unknown) => error instanceof ORPCError && error.status === 401

/** Any 401 sends the app back to its login form (the session query is what gates it). */
const onError = (error: unknown) => {
  if (isUnauthorized(error)) queryClient.setQueryData(SESSION_KEY, null)
}

export const SESSION_KEY = ['session']

export const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError }),
  mutationCache: new MutationCache({ onError }),
  defaultOptions: {
    queries: {
      staleTime: 2_000,
      retry: (count, error) => !isUnauthorized(error) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
})

/** The current session, or null when logged out (401). */
export async function fetchSession(): Promise<SessionInfo | null> {
  const res = await fetch('/auth/session', { credentials: 'same-origin' })
  if (res.status === 401) {
    csrfToken = null
    return null
  }
  if (!res.ok) throw new Error(`GET /auth/session answered ${res.status}`)
  const session = (await res.json()) as SessionInfo
  csrfToken = session.csrfToken
  return session
}

/** Logs in with an API key; resolves with the new session, rejects with the server's message. */
export async function login(apiKey: string): Promise<SessionInfo> {
  const res = await fetch('/auth/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ apiKey }),
  })
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string }
    throw new Error(body.message ?? `login failed (${res.status})`)
  }
  const session = await fetchSession()
  if (!session) throw new Error('logged in, but the session cookie was not kept by the browser')
  return session
}

export async function logout(): Promise<void> {
  await fetch('/auth/logout', {
    method: 'POST',
    credentials: 'same-origin',
    headers: csrfToken ? { 'x-ratchet-csrf': csrfToken } : {},
  })
  csrfToken = null
  // The session query first (it shows the login form), then everything read under the session.
  queryClient.setQueryData(SESSION_KEY, null)
  queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== SESSION_KEY[0] })
}

/** A readable message of any error (an API error's message, with its code). */
export function errorMessage(error: unknown): string {
  if (error instanceof ORPCError) return `${error.code}: ${error.message}`
  return error instanceof Error ? error.message : String(error)
}
