/**
 * Time is a port: the engine never reads `Date.now()` or calls `setTimeout` itself, so
 * tests move a {@link ManualClock} instead of sleeping.
 */
export interface TimerHandle {
  readonly __timer: unique symbol
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** Calls `fn` after `delayMs` (clamped to 0..2^31-1). */
  setTimeout(fn: () => void, delayMs: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

const MAX_TIMER_MS = 2 ** 31 - 1

const clamp = (ms: number) => Math.min(Math.max(0, ms), MAX_TIMER_MS)

/**
 * The wall clock and the runtime's timers. A started executor's timers keep the process
 * alive, as a worker should; `stop()` clears them.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, delayMs) {
    return setTimeout(fn, clamp(delayMs)) as unknown as TimerHandle
  },
  clearTimeout(handle) {
    clearTimeout(handle as unknown as ReturnType<typeof setTimeout>)
  },
}

interface ManualTimer {
  id: number
  at: number
  fn: () => void
}

/**
 * A clock that only moves when told to. `advance(ms)` fires every timer that falls due, in
 * order of due time, with `now()` set to each timer's due time while it runs.
 */
export class ManualClock implements Clock {
  private current: number
  private nextId = 1
  private timers: ManualTimer[] = []

  constructor(start: number | Date = Date.UTC(2030, 0, 1)) {
    this.current = typeof start === 'number' ? start : start.getTime()
  }

  now(): number {
    return this.current
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.current + clamp(delayMs), fn }
    this.timers.push(timer)
    return timer.id as unknown as TimerHandle
  }

  clearTimeout(handle: TimerHandle): void {
    const id = handle as unknown as number
    this.timers = this.timers.filter((t) => t.id !== id)
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    this.set(this.current + ms)
  }

  /** Moves time forward to `at` (never backwards), firing due timers in order. */
  set(at: number | Date): void {
    const target = typeof at === 'number' ? at : at.getTime()
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0]
      if (!due) break
      this.timers = this.timers.filter((t) => t !== due)
      this.current = Math.max(this.current, due.at)
      due.fn()
    }
    this.current = Math.max(this.current, target)
  }

  /** How many timers are pending (for tests). */
  pendingTimers(): number {
    return this.timers.length
  }
}
