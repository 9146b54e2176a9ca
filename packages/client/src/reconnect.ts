import { ORPCError } from '@orpc/client'
import type { ClientRetryPluginContext } from '@orpc/client/plugins'

/** How long a watch connection must stay open to count as working. */
const STABLE_CONNECTION_MS = 1_000

/**
 * When a watch reconnects, and when it gives up: the policy given, per call, to oRPC's
 * `ClientRetryPlugin` (which reconnects a dropped event stream and resumes it with the last
 * event id it saw).
 *
 * - Contract errors (NOT_FOUND, UNAUTHORIZED…) and other 4xx are not retried: reconnecting
 *   cannot make them go away. Network errors and 5xx are (a restart, a deploy, a shutdown's 503,
 *   the database's outage: STORAGE_UNAVAILABLE).
 * - Reconnects back off from 100 ms to 2 s, and stop once they have failed for
 *   `reconnectForMs`; the last error is thrown.
 * - A connection that worked (it delivered an event, or stayed open for 1 s) starts the back-off
 *   and the give-up clock over; one that fails at once does not, so a server that keeps failing
 *   is given up on.
 * - An aborted signal is never retried, and ends a back-off at once.
 */
export class ReconnectPolicy {
  private failingSince: number | undefined
  private openedAt: number | undefined
  private worked = false
  private retries = 0

  constructor(
    private readonly reconnectForMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** The per-call context of `ClientRetryPlugin`. */
  readonly context: ClientRetryPluginContext = {
    retry: Number.POSITIVE_INFINITY,
    shouldRetry: ({ error }) => this.shouldRetry(error),
    // The plugin's own delay is a bare setTimeout that an abort does not end: back off here
    // instead (the plugin awaits a promised delay) and let it wait 0 ms after.
    retryDelay: async () => {
      await this.backOff()
      return 0
    },
    onRetry: () => (connected) => {
      if (connected) this.opened()
    },
  }

  /** A connection (the first, or a reconnect) is open. */
  opened(): void {
    this.openedAt = Date.now()
  }

  /** The open connection delivered an event. */
  delivered(): void {
    this.worked = true
  }

  /** Whether to reconnect after `error` ended (or refused) a connection. */
  shouldRetry(error: unknown): boolean {
    if (this.signal?.aborted) return false
    if (error instanceof ORPCError && error.status < 500) return false
    const now = Date.now()
    if (this.worked || (this.openedAt !== undefined && now - this.openedAt >= STABLE_CONNECTION_MS)) {
      this.failingSince = undefined
      this.retries = 0
    }
    this.worked = false
    this.openedAt = undefined
    this.failingSince ??= now
    return now - this.failingSince < this.reconnectForMs
  }

  /** Waits before the next reconnect; rejects with the signal's reason as soon as it aborts. */
  backOff(): Promise<void> {
    return sleep(Math.min(100 * 2 ** Math.min(this.retries++, 5), 2_000), this.signal)
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason as Error)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` aborts, whichever comes
 * first. A value that arrives after the abort goes to `onLate` (to close a stream nobody reads).
 *
 * Why not trust the signal given to `fetch` to end the request: Node's fetch (undici, up to
 * at least 6.x) links that signal to the request through a `WeakRef`, and once the `Request`
 * object is garbage-collected — oRPC builds it and drops it while the response streams — an
 * abort no longer reaches the connection, and a read of an event stream waits forever
 * (nodejs/undici#3644, nodejs/node#55428).
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onLate?: (value: T) => void,
): Promise<T> {
  if (!signal) return promise
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason as Error)
      promise.then(onLate, () => {})
    }
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    promise.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject)
  })
}
