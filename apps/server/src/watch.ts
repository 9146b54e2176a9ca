import { ORPCError, withEventMeta } from '@orpc/server'
import type { ChangeEvent, WatchEvent } from '@ratchet/contract'
import {
  CHANGE_CURSOR_PATTERN,
  isTerminalStatus,
  ValidationError,
  type Engine,
  type Execution,
  type ExecutionChangeEvent,
} from '@ratchet/core'
import { toApiChange, toApiExecution } from './api-mapping'
import { SafetyPoll, type Waiter } from './safety-poll'

export interface WatchHubOptions {
  engine: Engine
  /**
   * How often the hub checks whether the database moved (one cheap read of the change cursor,
   * for every stream at once) while streams are open. Changes made by this process wake
   * streams at once; this catches the rest (another process on the same database, a change
   * that wakes no one in this process). With a storage that sends notifications (PostgreSQL),
   * another process's changes also wake the streams at once.
   * @default 1_000
   */
  pollMs?: number
}

/** Rows read per `changesSince` call of a change stream. */
const CHANGES_PAGE = 500

/** Cursors a change stream remembers having delivered before the safety poll asks about them. */
const DELIVERED_MAX = 10 * CHANGES_PAGE

/**
 * `executions.watch` and `executions.changes`: event streams read from the history. A watch's
 * event id is the history `seq` of the change (one execution's seqs are in commit order); a
 * change stream's is the change's `cursor` (opaque, compared for equality only). A client that
 * reconnects with `Last-Event-ID` gets exactly the changes after it, so nothing is skipped or
 * repeated across a dropped connection, a server restart or a move to another replica.
 *
 * No stream polls the database on its own: this process's changes wake the streams they
 * concern at once (the engine's change feed), and one `SafetyPoll` for the whole hub wakes
 * them when the database moved without this process noticing.
 */
export class WatchHub {
  private readonly engine: Engine
  private readonly poll: SafetyPoll
  private readonly pollMs: number
  private readonly open = new Set<AbortController>()

  constructor(options: WatchHubOptions) {
    this.engine = options.engine
    this.pollMs = options.pollMs ?? 1_000
    this.poll = new SafetyPoll(this.engine, this.pollMs, this.engine.storage.notifications)
  }

  /** Streams open right now (watches and change streams). */
  get active(): number {
    return this.open.size
  }

  /**
   * Ends every open stream (server shutdown) with a 503 error event: clients reconnect, to
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
    const stream = this.openStream(signal)
    const waiter: Waiter = {
      wake: stream.wake,
      concerns: (row) => row.executionId === id && row.seq > (cursor ?? 0),
    }
    const unsubscribe = this.engine.changes.subscribe(id, stream.wake)
    try {
      await this.poll.add(waiter)
      for (;;) {
        if (stream.closed()) return // the client went away
        stream.dirty = false
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
        if (stream.dirty) continue
        await stream.sleep()
      }
    } finally {
      unsubscribe()
      this.poll.remove(waiter)
      stream.close()
    }
  }

  /**
   * `executions.wait`: the execution once it is terminal, or as it is when `timeoutMs` passes or
   * `signal` aborts (see `Engine.waitFor`). Besides this process's own changes, the hub's poll
   * wakes it when another process (a replica, through its notices) ends the execution. Throws
   * `NotFoundError`, and `StorageUnavailableError` while the database cannot be reached.
   */
  async wait(id: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<Execution> {
    let wake: (() => void) | undefined
    const waiter: Waiter = {
      wake: () => wake?.(),
      concerns: (row) => row.executionId === id && isTerminalStatus(row.to),
    }
    try {
      await this.poll.add(waiter)
      // The hub's poll covers the wait too: the wait's own re-read comes no more often.
      return await this.engine.waitFor(id, {
        ...options,
        pollMs: this.pollMs,
        wakeOn: (wakeUp) => {
          wake = wakeUp
          return () => (wake = undefined)
        },
      })
    } finally {
      this.poll.remove(waiter)
    }
  }

  /**
   * Where a change stream starts: after `lastEventId` (a change's cursor) when given, else after
   * the last change so far ("from now"). Throws `ValidationError` (naming `lastEventId`) for a
   * Last-Event-ID that is not a cursor of this database, before anything is streamed: checked
   * against the cursor grammar, then by one read of the change feed after it.
   */
  async changesStart(lastEventId: string | undefined): Promise<string> {
    if (lastEventId === undefined || lastEventId === '') return this.engine.changeCursor()
    const invalid = () =>
      new ValidationError('Last-Event-ID is not an event id of this stream (the cursor of a change)', [
        {
          path: ['lastEventId'],
          message: 'expected the id of an event of this stream (digits, or digits.digits)',
        },
      ])
    if (!CHANGE_CURSOR_PATTERN.test(lastEventId)) throw invalid()
    try {
      await this.engine.changesSince({ after: lastEventId, limit: 1 })
    } catch (error) {
      // Well formed, but another database's (SQLite refuses PostgreSQL's `xid.seq`).
      if (error instanceof ValidationError) throw invalid()
      throw error
    }
    return lastEventId
  }

  /**
   * Every status change (of task `taskId`, of the tree of `rootId`) after the cursor `from`, in
   * feed order, until `signal` aborts or `closeAll`. Never ends by itself.
   */
  async *changes(
    filter: { taskId?: string | undefined; rootId?: string | undefined },
    from: string,
    signal?: AbortSignal,
  ): AsyncGenerator<ChangeEvent> {
    const { taskId, rootId } = filter
    const query = {
      ...(taskId !== undefined ? { taskId: this.engine.registry.resolve(taskId)?.id ?? taskId } : {}),
      ...(rootId !== undefined ? { rootId } : {}),
    }
    // `scanned`: every change up to this cursor was read (those that passed the filter were
    // delivered), so a filtered stream does not read the others again and again.
    let scanned = from
    const filtered = query.taskId !== undefined || query.rootId !== undefined
    const stream = this.openStream(signal)
    const matches = (row: Pick<ExecutionChangeEvent, 'taskId' | 'rootId'>) =>
      (query.taskId === undefined || row.taskId === query.taskId) &&
      (query.rootId === undefined || row.rootId === query.rootId)
    // Cursors are compared for equality only, so the stream remembers what it delivered: the
    // safety poll asks about each change once, and a change delivered already wakes nobody.
    const delivered = new Set<string>()
    const waiter: Waiter = {
      wake: stream.wake,
      concerns: (row) => !delivered.delete(row.cursor) && matches(row),
    }
    const unsubscribe = this.engine.changes.subscribeAll((change) => {
      // The in-process feed carries no tree: a tree filter wakes on every change.
      if (query.taskId === undefined || change.taskId === query.taskId) stream.wake()
    })
    try {
      await this.poll.add(waiter)
      for (;;) {
        if (stream.closed()) return // the client went away
        stream.dirty = false
        // Read before the page: every change up to it is readable, so once an empty page is read
        // nothing up to `last` is left unread, and the next read starts there. (After a page
        // with rows, its last row may be later than `last`: cursors cannot tell, so it stays.)
        const last = filtered ? await this.engine.changeCursor() : undefined
        const rows = await this.engine.changesSince({ after: scanned, limit: CHANGES_PAGE, ...query })
        for (const row of rows) {
          scanned = row.cursor
          if (delivered.size >= DELIVERED_MAX) delivered.clear() // at worst, one needless read later
          delivered.add(row.cursor)
          yield withEventMeta(toApiChange(row), { id: row.cursor })
        }
        if (rows.length === CHANGES_PAGE) continue
        if (rows.length === 0 && last !== undefined) scanned = last
        if (stream.dirty) continue
        await stream.sleep()
      }
    } finally {
      unsubscribe()
      this.poll.remove(waiter)
      stream.close()
    }
  }

  /** The shared plumbing of a stream: its abort, its wake-up, its sleep. */
  private openStream(signal: AbortSignal | undefined) {
    const controller = new AbortController()
    const onAbort = () => controller.abort()
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted) controller.abort()
    this.open.add(controller)
    let resolveSleep: (() => void) | undefined
    const stream = {
      /** Something may have changed since the stream last read. */
      dirty: false,
      wake: () => {
        stream.dirty = true
        resolveSleep?.()
      },
      /** True once the stream's client went away; throws a 503 on shutdown. */
      closed: (): boolean => {
        if (!controller.signal.aborted) return false
        if (signal?.aborted) return true
        // Shutdown: an error, not an end, so every client (not only ours) reconnects.
        throw new ORPCError('SERVICE_UNAVAILABLE', {
          status: 503,
          message: 'the server is shutting down; reconnect with Last-Event-ID to resume',
        })
      },
      /** Until woken or aborted. */
      sleep: () =>
        new Promise<void>((resolve) => {
          const done = () => {
            // One listener per pass; without this a long stream piles them up on one signal.
            controller.signal.removeEventListener('abort', done)
            resolveSleep = undefined
            resolve()
          }
          resolveSleep = done
          controller.signal.addEventListener('abort', done, { once: true })
        }),
      close: () => {
        signal?.removeEventListener('abort', onAbort)
        this.open.delete(controller)
      },
    }
    return stream
  }
}

function parseCursor(lastEventId: string | undefined): number | undefined {
  if (lastEventId === undefined || lastEventId === '') return undefined
  const seq = /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : Number.NaN
  return Number.isSafeInteger(seq) ? seq : undefined
}
