import { AsyncLocalStorage } from 'node:async_hooks'
import { SuspendedError, serializeError, type AttemptInfo, type Executor, type Logger } from '@ratchet/core'

/**
 * Errors that escape task code: a throw in a timer or callback the code set
 * (`uncaughtException`), a rejected promise it left unhandled (`unhandledRejection`). Node's
 * default is to kill the process, and with it every attempt in flight. A started server logs
 * them instead and keeps serving.
 *
 * Attribution: every attempt's task code runs inside an AsyncLocalStorage holding the attempt
 * (`ExecutorOptions.withinAttempt`); Node runs the handlers in the async context of the code
 * that threw (for a rejection: of the code that created the promise), so the store names the
 * attempt. Such an error is logged at error level with `executionId`, `taskId` and `attempt`,
 * and fails that attempt if it is still running (as if its run had thrown it: a run whose timer
 * threw may never settle). An error no attempt owns is logged at error level too, and the
 * process goes on: see docs/deployment.md for what an operator does about it.
 *
 * Attribution has a price on Node 20: an AsyncLocalStorage in use turns on promise hooks for
 * the whole process, so every promise anywhere (HTTP handling included) costs more: about
 * 15 % of the HTTP throughput of no-op tasks, measured. So by default (`after-first`) it is
 * off until the first stray error, which is logged without its execution (but with the
 * executions running at that moment, its suspects), and on from then on (for attempts that
 * start afterwards) until the last server stops: a server whose tasks
 * never let an error escape pays nothing, and one whose tasks do learn which ones.
 * `always` turns it on at start.
 *
 * One pair of process handlers serves every started server of the process (tests start
 * several): the attempt's own server handles what it owns.
 */
interface Owner {
  info: AttemptInfo
  executor: Executor
  logger: Logger
}

/** When stray errors start being traced to their execution (see above). */
export type StrayErrorAttribution = 'always' | 'after-first'

export const STRAY_ERROR_ATTRIBUTIONS: readonly StrayErrorAttribution[] = ['after-first', 'always']

const scope = new AsyncLocalStorage<Owner>()
/** One entry per started server (two servers may share a logger). */
const started = new Set<{ logger: Logger; executor: Executor }>()
/** How many running executions an unattributed stray error names as its suspects. */
const MAX_SUSPECTS = 20
/** Whether attempts run inside `scope` (off until needed: see the price above). */
let attributing = false

/**
 * `ExecutorOptions.withinAttempt` for a server: runs the attempt's code in its scope while
 * attribution is on, else as it is (no AsyncLocalStorage, no promise hooks).
 */
export function attemptScope(
  owner: () => { executor: Executor; logger: Logger },
): <T>(info: AttemptInfo, fn: () => T) => T {
  return (info, fn) => (attributing ? scope.run({ info, ...owner() }, fn) : fn())
}

function report(kind: 'uncaught exception' | 'unhandled promise rejection', error: unknown): void {
  const owner = scope.getStore()
  if (!owner) {
    // Logged once, by the first started server's logger.
    const [first] = started
    if (attributing) {
      first?.logger.error({ err: serializeError(error) }, `${kind} outside any execution`)
      return
    }
    attributing = true
    // Not traced yet: the runs in flight are where it most likely came from.
    const running = [...started].flatMap((s) => s.executor.runningAttempts())
    first?.logger.error(
      {
        err: serializeError(error),
        runningExecutions: running
          .slice(0, MAX_SUSPECTS)
          .map(({ executionId, taskId }) => ({ executionId, taskId })),
        ...(running.length > MAX_SUSPECTS ? { moreRunning: running.length - MAX_SUSPECTS } : {}),
      },
      `${kind}, execution unknown: stray errors are traced to their execution from now on`,
    )
    return
  }
  const { info, executor, logger } = owner
  const attemptFailed = executor.failAttempt(info, error)
  const fields = { ...info, err: serializeError(error), attemptFailed }
  // A dropped run's own promise rejecting with the reason it was dropped for: expected, once
  // the code lets that promise float.
  if (!attemptFailed && error instanceof SuspendedError)
    logger.warn(fields, `${kind} in task code after its run was dropped (parked)`)
  else logger.error(fields, `${kind} in task code`)
}

const onUncaughtException = (error: unknown) => report('uncaught exception', error)
const onUnhandledRejection = (reason: unknown) => report('unhandled promise rejection', reason)

/**
 * Handles stray errors (see above) while the server runs; call the returned function on stop.
 * The process handlers are installed with the first started server and removed with the last.
 */
export function handleStrayErrors(
  logger: Logger,
  executor: Executor,
  attribution: StrayErrorAttribution = 'after-first',
): () => void {
  if (started.size === 0) {
    process.on('uncaughtException', onUncaughtException)
    process.on('unhandledRejection', onUnhandledRejection)
  }
  if (attribution === 'always') attributing = true
  const entry = { logger, executor }
  started.add(entry)
  return () => {
    if (!started.delete(entry) || started.size > 0) return
    process.off('uncaughtException', onUncaughtException)
    process.off('unhandledRejection', onUnhandledRejection)
    // The last server is gone: its promise hooks go too.
    attributing = false
    scope.disable()
  }
}
