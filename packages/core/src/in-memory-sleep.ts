import type { RunningAttempt } from './attempt'
import type { Clock } from './clock'
import type { Slots } from './slots'

/**
 * Short durable sleeps passed in memory (`ExecutorOptions.shortSleepMs`): the sleep's record is
 * written as usual and the execution stays `running` under its lease, holding no slot, instead
 * of a park, requeue, claim and replay. A crash resumes it from the record like any wait.
 */

/**
 * @internal Whether a sleep until `wakeAt` may pass in memory: the executor runs (not
 * `tick()`), the sleep is at most `shortSleepMs`, and it ends well before the attempt's time
 * limit and the execution's deadline.
 */
export function canSleepInMemory(
  attempt: RunningAttempt,
  wakeAt: number,
  now: number,
  shortSleepMs: number,
  running: boolean,
): boolean {
  const deadline = attempt.row.deadlineAt ?? Infinity
  return (
    running &&
    !attempt.finished &&
    wakeAt - now <= shortSleepMs &&
    wakeAt + shortSleepMs < attempt.endsAt &&
    wakeAt < deadline
  )
}

/**
 * @internal Sleeps in memory until `wakeAt`, holding no slot; once it is over and a slot is free
 * again (woken sleepers go before new claims), takes the slot, calls `resumed` (which restarts
 * the attempt's time limit) and resolves. Rejects with the abort reason when the attempt aborts
 * or ends meanwhile (`finish` cancels its `sleepers`).
 */
export function sleepInMemory(
  attempt: RunningAttempt,
  wakeAt: number,
  clock: Clock,
  slots: Slots,
  resumed: () => void,
): Promise<void> {
  const signal = attempt.controller.signal
  return new Promise<void>((resolve, reject) => {
    let timer: ReturnType<Clock['setTimeout']> | undefined
    let ready: (() => void) | undefined
    const cleanup = () => {
      if (timer) clock.clearTimeout(timer)
      if (ready) slots.cancelWait(ready)
      signal.removeEventListener('abort', cancel)
      attempt.sleepers.delete(cancel)
    }
    const cancel = () => {
      cleanup()
      reject((signal.reason as Error | undefined) ?? new Error('the attempt ended during an in-memory sleep'))
    }
    const resume = () => {
      cleanup()
      slots.take(attempt)
      resumed()
      resolve()
    }
    if (signal.aborted || attempt.finished) return cancel()
    signal.addEventListener('abort', cancel, { once: true })
    attempt.sleepers.add(cancel)
    slots.release(attempt)
    timer = clock.setTimeout(
      () => {
        timer = undefined
        if (!slots.resumeWhenFree(resume)) ready = resume
      },
      Math.max(0, wakeAt - clock.now()),
    )
  })
}
