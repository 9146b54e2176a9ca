/**
 * How the adapter reads PostgreSQL and driver errors: the one place that decides whether an
 * error means "the database is unreachable" (→ `StorageUnavailableError`, retry later) or "a
 * concurrent transaction got in the way" (→ run the transaction again).
 */

/** Socket-level failures: the server is down, restarting, or the network is. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
])

/**
 * SQLSTATEs of a server that cannot serve: admin shutdown / crash shutdown / cannot connect
 * now (57P01-57P03), too many connections (53300, a restart's crowd), and the whole
 * connection exception class (08xxx).
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300'])

/** Messages pg gives without a code: a connection closed under a query, a checkout timeout. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Connection terminated unexpectedly',
]

/**
 * The error and the errors it wraps (`cause`), outermost first: drizzle's queries reject with a
 * `DrizzleQueryError` ("Failed query: …") whose `cause` is the driver's error with the code.
 */
function* errorChain(error: unknown): Generator<Error> {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) yield e
}

/** Whether `error` means the database could not be reached or dropped the connection. */
export function isUnavailable(error: unknown): boolean {
  for (const e of errorChain(error)) if (isUnavailableItself(e)) return true
  return false
}

function isUnavailableItself(error: Error): boolean {
  const { code, severity } = error as { code?: unknown; severity?: unknown }
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true
    // "database … is not currently accepting connections" (ALTER DATABASE … ALLOW_CONNECTIONS
    // false, maintenance): refused at connect, as FATAL. The same state as an ERROR is a query's.
    if (code === '55000' && severity === 'FATAL') return true
  }
  // Node's happy-eyeballs connect (IPv4 and IPv6 tried at once) fails with an AggregateError.
  if (error instanceof AggregateError && error.errors.some(isUnavailable)) return true
  return UNAVAILABLE_MESSAGES.some((message) => error.message.includes(message))
}

/** serialization_failure (40001) or deadlock_detected (40P01): safe to run the transaction again. */
export function isRetryableConflict(error: unknown): boolean {
  for (const e of errorChain(error)) {
    const { code } = e as { code?: unknown }
    if (code === '40001' || code === '40P01') return true
  }
  return false
}

/** A unique-index violation (23505) on the named constraint or index. */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null
  return e?.code === '23505' && e.constraint === constraint
}
