/**
 * `Engine.waitFor`: waits for an execution to end, woken by this process's changes and by the
 * caller's `wakeOn`, and polling storage for other processes' changes.
 */
import type { ChangeFeed } from './change-feed'
import type { Clock } from './clock'
import type { Execution } from './execution-view'
import { isTerminalStatus } from './state-machine'

export interface WaitForOptions {
  timeoutMs: number
  signal?: AbortSignal
  pollMs?: number
  wakeOn?: (wake: () => void) => () => void
}

interface Deps {
  changes: ChangeFeed
  clock: Clock
  get: (id: string) => Promise<Execution>
}

/** The execution once it is terminal, or as it is when the wait ends; see `Engine.waitFor`. */
export async function waitUntilEnded(
  { changes, clock, get }: Deps,
  id: string,
  options: WaitForOptions,
): Promise<Execution> {
  let wake: () => void = () => {}
  // A terminal change that arrives while the row is being read must not be missed.
  let changed = false
  const unsubscribe = changes.subscribe(id, (change) => {
    if (!isTerminalStatus(change.status)) return
    changed = true
    wake()
  })
  const unhook = options.wakeOn?.(() => {
    changed = true
    wake()
  })
  const deadline = clock.now() + options.timeoutMs
  try {
    for (;;) {
      changed = false
      const execution = await get(id)
      const remaining = deadline - clock.now()
      if (isTerminalStatus(execution.status) || remaining <= 0 || options.signal?.aborted) return execution
      if (changed) continue
      await new Promise<void>((resolve) => {
        const timer = clock.setTimeout(done, Math.min(remaining, options.pollMs ?? 1000))
        const signal = options.signal
        function done() {
          signal?.removeEventListener('abort', onWake)
          resolve()
        }
        const onWake = () => {
          clock.clearTimeout(timer)
          done()
        }
        wake = onWake
        signal?.addEventListener('abort', onWake, { once: true })
      })
    }
  } finally {
    unsubscribe()
    unhook?.()
  }
}
