import { ManualClock, type TimerHandle } from '@ratchet/core'

const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A {@link ManualClock} that can tell when its next timer is due and reports every timer it
 * sets or clears. The test engine uses it to notice an attempt that waits on the clock in the
 * middle of a tick (a step's retry back-off, an attempt's timeout) and to move time for it.
 */
export class WatchedClock extends ManualClock {
  private readonly dueAt = new Map<TimerHandle, number>()
  /** Called after a timer is set or cleared. */
  onChange: (() => void) | undefined

  override setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const handle = super.setTimeout(() => {
      this.dueAt.delete(handle)
      fn()
    }, delayMs)
    this.dueAt.set(handle, this.now() + Math.min(Math.max(0, delayMs), MAX_TIMER_MS))
    this.onChange?.()
    return handle
  }

  override clearTimeout(handle: TimerHandle): void {
    super.clearTimeout(handle)
    if (this.dueAt.delete(handle)) this.onChange?.()
  }

  /** The due time of the earliest pending timer, or `undefined` when none is pending. */
  nextTimerAt(): number | undefined {
    let next: number | undefined
    for (const at of this.dueAt.values()) if (next === undefined || at < next) next = at
    return next
  }
}
