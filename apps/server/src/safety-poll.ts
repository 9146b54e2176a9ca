import type { Engine, ExecutionChangeEvent, StorageNotifications } from '@ratchet/core'

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
 * After a check run by a notice, one more this soon: on PostgreSQL a change committed while an
 * older transaction still runs is not readable from the change feed until that one ends (the
 * feed never passes a row that could still be followed by an earlier one), so the first check
 * can miss the change it was told of.
 */
const NOTICE_RECHECK_MS = 50

/**
 * The one database poll of a WatchHub, for every open stream at once. While a stream is
 * open, every `pollMs` it reads the change cursor (one index read); when it moved, it reads
 * the status changes since the previous check (a range of the history) and wakes the streams
 * they concern that have not read them yet: changes this process made and already woke its
 * streams for wake nobody again. With no stream open it reads nothing. Each change is asked
 * about at most once per waiter (cursors are compared for equality only; see `Waiter`).
 *
 * With `notifications` (PostgreSQL's LISTEN/NOTIFY), a notice that another process (another
 * replica) wrote status changes runs a check at once, so its streams see the change within
 * milliseconds, not at the next tick; notices that arrive during a check run one more after it
 * (coalesced), and one more `NOTICE_RECHECK_MS` later. The timed tick stays, for notices lost while
 * the notification connection was down.
 *
 * Failure semantics: a failed read is retried at the next tick (or notice); the streams
 * meanwhile still wake on this process's own changes.
 */
export class SafetyPoll {
  private readonly waiters = new Set<Waiter>()
  private timer: NodeJS.Timeout | undefined
  /** Every change up to this cursor was checked against the waiters; undefined while idle. */
  private checked: string | undefined
  private starting: Promise<void> | undefined
  /** Stops listening to the notifications; set while streams are open. */
  private unlisten: (() => void) | undefined
  private checking = false
  /** A notice came during a check: check again right after it. */
  private again = false

  constructor(
    private readonly engine: Engine,
    private readonly pollMs: number,
    private readonly notifications?: StorageNotifications,
  ) {}

  /**
   * Adds a stream. Resolves once the poll covers it: every change committed after this
   * resolves is checked for it, so the stream's first read must come after. Rejects when the
   * first read of the cursor fails (the database is unreachable).
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
    this.again = false
    this.unlisten?.()
    this.unlisten = undefined
  }

  private async start(): Promise<void> {
    try {
      // Listening first: a notice of a change committed after the cursor read is not missed.
      this.listen()
      const cursor = await this.engine.changeCursor()
      if (this.waiters.size === 0) return
      this.checked = cursor
      this.schedule()
    } finally {
      this.starting = undefined
    }
  }

  private listen(): void {
    if (!this.notifications || this.unlisten) return
    const offChange = this.notifications.onChange(() => this.checkNow())
    // Back after an outage of the notification connection: notices may have been lost.
    const offConnection = this.notifications.onConnection((up) => {
      if (up) this.checkNow()
    })
    this.unlisten = () => {
      offChange()
      offConnection()
    }
  }

  /** A check now (a notice came), or right after the one running. */
  private checkNow(): void {
    if (this.checked === undefined) return
    if (this.checking) {
      this.again = true
      return
    }
    clearTimeout(this.timer)
    void this.tick(true)
  }

  private schedule(delayMs = this.pollMs): void {
    // One pending tick at most, even when a tick of a run that stopped (every stream closed)
    // and started again (a new stream) ends after the new run scheduled its own.
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.tick(false), delayMs)
    this.timer.unref()
  }

  /** One check; `noticed`: run by a notice (then the next comes soon, see NOTICE_RECHECK_MS). */
  private async tick(noticed: boolean): Promise<void> {
    this.checking = true
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
      // Read again at the next tick (or notice); the streams still wake on this process's changes.
    } finally {
      this.checking = false
      if (this.waiters.size > 0 && this.checked !== undefined) {
        if (this.again) {
          this.again = false
          void this.tick(true)
        } else this.schedule(noticed ? NOTICE_RECHECK_MS : this.pollMs)
      }
    }
  }
}
