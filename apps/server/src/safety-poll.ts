import type { Engine, ExecutionChangeEvent } from '@ratchet/core'

/** A stream waiting for changes. */
export interface Waiter {
  /** Makes the stream read again. */
  wake(): void
  /**
   * Whether this change is one the stream has not read yet and would deliver. Asked at most
   * once per change, in feed order.
   */
  concerns(change: ExecutionChangeEvent): boolean
}

/** Changes read per check: more than this since the last check wakes every stream. */
const BATCH = 1_000

/**
 * The one database poll of a WatchHub, for every open stream at once. While a stream is
 * open, every `pollMs` it reads the change cursor (one index read); when it moved, it reads
 * the status changes since the previous check (a range of the history) and wakes the streams
 * they concern that have not read them yet: changes this process made and already woke its
 * streams for wake nobody again. With no stream open it reads nothing. Each change is asked
 * about at most once per waiter (cursors are compared for equality only; see `Waiter`).
 *
 * Failure semantics: a failed read is retried at the next tick; the streams meanwhile still
 * wake on this process's own changes.
 */
export class SafetyPoll {
  private readonly waiters = new Set<Waiter>()
  private timer: NodeJS.Timeout | undefined
  /** Every change up to this cursor was checked against the waiters; undefined while idle. */
  private checked: string | undefined
  private starting: Promise<void> | undefined

  constructor(
    private readonly engine: Engine,
    private readonly pollMs: number,
  ) {}

  /**
   * Adds a stream. Resolves once the poll covers it: every change committed after this
   * resolves is checked for it, so the stream's first read must come after.
   */
  async add(waiter: Waiter): Promise<void> {
    this.waiters.add(waiter)
    if (this.checked !== undefined) return
    this.starting ??= this.start()
    await this.starting
  }

  remove(waiter: Waiter): void {
    this.waiters.delete(waiter)
    if (this.waiters.size > 0) return
    clearTimeout(this.timer)
    this.timer = undefined
    this.checked = undefined
    this.starting = undefined
  }

  private async start(): Promise<void> {
    try {
      const cursor = await this.engine.changeCursor()
      if (this.waiters.size === 0) return
      this.checked = cursor
      this.schedule()
    } finally {
      this.starting = undefined
    }
  }

  private schedule(): void {
    // One pending tick at most, even when a tick of a run that stopped (every stream closed)
    // and started again (a new stream) ends after the new run scheduled its own.
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.tick(), this.pollMs)
    this.timer.unref()
  }

  private async tick(): Promise<void> {
    try {
      const from = this.checked
      if (from === undefined) return
      const last = await this.engine.changeCursor()
      if (last !== from) {
        const changes = await this.engine.changesSince({ after: from, limit: BATCH })
        // Every stream closed meanwhile (and maybe new ones started from a new baseline).
        if (this.checked !== from) return
        for (const waiter of this.waiters) {
          if (changes.length === BATCH) {
            waiter.wake()
            continue
          }
          // Every change is asked about (no early exit), so a stream forgets what it delivered.
          let concerned = false
          for (const change of changes) if (waiter.concerns(change)) concerned = true
          if (concerned) waiter.wake()
        }
        // Up to the page's end when the page holds `last` (its rows after `last` were checked
        // too); else to `last` (not a status change, or beyond a full page): the rows after it
        // in this page may be asked about again, which at worst wakes a stream for nothing.
        this.checked = changes.some((c) => c.cursor === last) ? changes.at(-1)!.cursor : last
      }
    } catch {
      // Read again at the next tick; the streams still wake on this process's changes.
    } finally {
      if (this.waiters.size > 0 && this.checked !== undefined) this.schedule()
    }
  }
}
