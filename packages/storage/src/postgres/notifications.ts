import pg from 'pg'
import type { StorageNotifications } from '@ratchet/core'
import { CHANGE_CHANNEL, WAKE_CHANNEL } from './notify-channels'

/** Reconnect back-off: from 100 ms, doubling, up to 5 s, with full jitter. */
const FIRST_RETRY_MS = 100
const MAX_RETRY_MS = 5000

type Listener<T extends unknown[]> = (...args: T) => void

/** Listeners of one kind; each call of `emit` reaches all of them, and one that throws stops none. */
class Listeners<T extends unknown[]> {
  private readonly set = new Set<Listener<T>>()

  add(listener: Listener<T>): () => void {
    // Wrapped, so the same function subscribed twice is two subscriptions.
    const entry: Listener<T> = (...args) => listener(...args)
    this.set.add(entry)
    return () => void this.set.delete(entry)
  }

  emit(...args: T): void {
    for (const listener of [...this.set]) {
      try {
        listener(...args)
      } catch {
        // A listener's failure is its own; the others still hear the notice.
      }
    }
  }
}

/**
 * The adapter's `notifications`: one dedicated connection (not from the pool, where a LISTEN
 * would be lost when the connection goes back) that LISTENs on `ratchet_wake` and
 * `ratchet_change`, opened on the first subscription. When it drops it reconnects with
 * back-off and reports the gap through `onConnection` (false when lost, true when back: notices
 * in between are lost, so listeners re-read). Notices that arrive together are coalesced into
 * one call per channel. Wake notices sent by the adapter's own pool are dropped: its engine
 * already woke its claim loop for them, and each one heard would cost a claim that finds
 * nothing. Change notices are all heard: some changes (a parent woken by its child, a waiter
 * woken by a signal) reach this process's own watches only through the change feed.
 */
export class PostgresNotifications implements StorageNotifications {
  private readonly wake = new Listeners<[]>()
  private readonly change = new Listeners<[]>()
  private readonly connection = new Listeners<[boolean]>()
  private client: pg.Client | undefined
  private started = false
  private closed = false
  private up = false
  private lost = false
  private retryMs = FIRST_RETRY_MS
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private pending = { wake: false, change: false }

  /**
   * @param isOwn whether a notice's sender (a server process id) is a connection of this
   *   adapter's own pool: its wake notices are dropped (see `StorageNotifications.onWake`).
   */
  constructor(
    private readonly settings: { url: string; applicationName: string },
    private readonly isOwn: (processId: number) => boolean = () => false,
  ) {}

  onWake(listener: () => void): () => void {
    this.start()
    return this.wake.add(listener)
  }

  onChange(listener: () => void): () => void {
    this.start()
    return this.change.add(listener)
  }

  onConnection(listener: (up: boolean) => void): () => void {
    this.start()
    return this.connection.add(listener)
  }

  /** Whether the LISTEN connection is up now. */
  get connected(): boolean {
    return this.up
  }

  /** Stops listening and reconnecting; waits for the connection to close. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.retryTimer)
    const client = this.client
    this.client = undefined
    if (client) await client.end().catch(() => {})
  }

  private start(): void {
    if (this.started || this.closed) return
    this.started = true
    void this.connect()
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.settings.url,
      application_name: `${this.settings.applicationName}:listen`,
    })
    this.client = client
    // Errors (the backend terminated, the network gone) end the connection; 'end' reconnects.
    client.on('error', () => {})
    client.on('end', () => this.dropped(client))
    client.on('notification', (message) => this.received(message.channel, message.processId))
    try {
      await client.connect()
      await client.query(`LISTEN ${WAKE_CHANNEL}; LISTEN ${CHANGE_CHANNEL}`)
    } catch {
      this.dropped(client)
      await client.end().catch(() => {})
      return
    }
    if (this.closed || this.client !== client) {
      await client.end().catch(() => {})
      return
    }
    this.up = true
    this.retryMs = FIRST_RETRY_MS
    if (this.lost) {
      this.lost = false
      this.connection.emit(true)
    }
  }

  private dropped(client: pg.Client): void {
    if (this.client !== client || this.closed) return
    this.client = undefined
    this.up = false
    if (!this.lost) {
      this.lost = true
      this.connection.emit(false)
    }
    const delay = Math.random() * this.retryMs
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2)
    this.retryTimer = setTimeout(() => void this.connect(), delay)
  }

  private received(channel: string, processId: number): void {
    const kind = channel === WAKE_CHANNEL ? 'wake' : channel === CHANGE_CHANNEL ? 'change' : undefined
    if (!kind || this.pending[kind]) return
    if (kind === 'wake' && this.isOwn(processId)) return
    this.pending[kind] = true
    // Notices parsed from one network read arrive in one turn: one call for all of them.
    queueMicrotask(() => {
      this.pending[kind] = false
      this[kind].emit()
    })
  }
}
