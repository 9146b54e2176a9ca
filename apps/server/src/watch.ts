import { ORPCError, withEventMeta } from '@orpc/server'
import type { WatchEvent } from '@ratchet/contract'
import { isTerminalStatus, type Engine } from '@ratchet/core'
import { toApiExecution } from './api-mapping'

export interface WatchHubOptions {
  engine: Engine
  /**
   * How often a watcher re-reads the history when nothing woke it. Changes made by this
   * process wake watchers at once; this catches the rest (another replica, a missed wake).
   * @default 1_000
   */
  pollMs?: number
}

/**
 * `executions.watch`: streams an execution's status changes, read from its history in order,
 * until the execution is terminal with nothing after its last change (an execution retried
 * after it failed goes on). Each event's id is its history `seq`; a client that
 * reconnects with `Last-Event-ID` gets exactly the changes after it, so nothing is skipped or
 * repeated across a dropped connection or a server restart.
 */
export class WatchHub {
  private readonly engine: Engine
  private readonly pollMs: number
  private readonly open = new Set<AbortController>()

  constructor(options: WatchHubOptions) {
    this.engine = options.engine
    this.pollMs = options.pollMs ?? 1_000
  }

  /** Watches being streamed right now. */
  get active(): number {
    return this.open.size
  }

  /**
   * Ends every open watch (server shutdown) with a 503 error event: clients reconnect, to
   * this server after a restart or to another replica, and resume.
   */
  closeAll(): void {
    for (const controller of this.open) controller.abort()
  }

  /**
   * The change events of execution `id` after history seq `lastEventId` (from the first one
   * without it). Ends after a terminal status, when `signal` aborts, or on `closeAll`. Throws
   * `NotFoundError` for an unknown id before yielding anything.
   */
  async *watch(
    id: string,
    lastEventId: string | undefined,
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent> {
    let cursor = parseCursor(lastEventId)
    // The status of the last change delivered (or, when resuming, the one the client saw).
    let lastStatus: string | undefined
    if (cursor !== undefined) {
      const seen = (await this.engine.statusChanges(id, cursor - 1)).find((c) => c.seq === cursor)
      lastStatus = seen?.to
    }
    const controller = new AbortController()
    const onAbort = () => controller.abort()
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted) controller.abort()
    let dirty = false
    let wake: (() => void) | undefined
    const unsubscribe = this.engine.changes.subscribe(id, () => {
      dirty = true
      wake?.()
    })
    this.open.add(controller)
    try {
      for (;;) {
        if (controller.signal.aborted) {
          if (signal?.aborted) return // the client went away
          // Shutdown: an error, not an end, so every client (not only ours) reconnects.
          throw new ORPCError('SERVICE_UNAVAILABLE', {
            status: 503,
            message: 'the server is shutting down; reconnect with Last-Event-ID to resume',
          })
        }
        dirty = false
        const changes = await this.engine.statusChanges(id, cursor)
        if (changes.length > 0) {
          const execution = toApiExecution(await this.engine.get(id))
          for (const change of changes) {
            cursor = change.seq
            lastStatus = change.to
            const event: WatchEvent = {
              seq: change.seq,
              status: change.to,
              from: change.from,
              run: change.run,
              at: new Date(change.at),
              execution,
            }
            yield withEventMeta(event, { id: String(change.seq) })
          }
          continue
        }
        // Nothing after the last change delivered: done if that change was terminal (a terminal
        // change followed by more, a retried execution's earlier end, does not end the watch).
        // Decided from the history alone, so a change landing meanwhile is never skipped.
        if (lastStatus !== undefined && isTerminalStatus(lastStatus as WatchEvent['status'])) return
        if (dirty) continue
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.pollMs)
          controller.signal.addEventListener('abort', done, { once: true })
          wake = done
          function done() {
            clearTimeout(timer)
            // One listener per pass; without this a long watch piles them up on one signal.
            controller.signal.removeEventListener('abort', done)
            resolve()
          }
        })
        wake = undefined
      }
    } finally {
      unsubscribe()
      signal?.removeEventListener('abort', onAbort)
      this.open.delete(controller)
    }
  }
}

function parseCursor(lastEventId: string | undefined): number | undefined {
  if (lastEventId === undefined || lastEventId === '') return undefined
  const seq = Number(lastEventId)
  return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined
}
