import type { AttemptInfo, Engine, ExecutionObserver, StepInfo } from '@ratchet/core'

/**
 * One observer calling each of `observers` in turn (only the callbacks one of them has).
 * `withinStep` nests: the first observer's wraps the next one's.
 */
export function combineObservers(observers: readonly ExecutionObserver[]): ExecutionObserver | undefined {
  if (observers.length <= 1) return observers[0]
  if (observers.length === 2) return combineTwo(observers[0]!, observers[1]!)
  const all = <K extends keyof ExecutionObserver>(key: K) =>
    observers.map((o) => o[key]?.bind(o)).filter((f) => f !== undefined) as NonNullable<
      ExecutionObserver[K]
    >[]
  const enqueued = all('enqueued')
  const attemptStarted = all('attemptStarted')
  const attemptEnded = all('attemptEnded')
  const recovered = all('recovered')
  const storageError = all('storageError')
  const withinStep = all('withinStep')
  return {
    ...(enqueued.length > 0 && { enqueued: (e, created) => enqueued.forEach((f) => f(e, created)) }),
    ...(attemptStarted.length > 0 && {
      attemptStarted: (a, queuedForMs) => attemptStarted.forEach((f) => f(a, queuedForMs)),
    }),
    ...(attemptEnded.length > 0 && {
      attemptEnded: (a, outcome, ms) => attemptEnded.forEach((f) => f(a, outcome, ms)),
    }),
    ...(recovered.length > 0 && { recovered: (t, s) => recovered.forEach((f) => f(t, s)) }),
    ...(storageError.length > 0 && { storageError: (op, e) => storageError.forEach((f) => f(op, e)) }),
    ...(withinStep.length > 0 && {
      withinStep: <T>(
        a: Parameters<NonNullable<ExecutionObserver['withinStep']>>[0],
        step: Parameters<NonNullable<ExecutionObserver['withinStep']>>[1],
        fn: () => Promise<T>,
      ) => withinStep.reduceRight<() => Promise<T>>((next, f) => () => f(a, step, next), fn)(),
    }),
  }
}

/** Two observers (metrics and tracing, the server's case) with direct calls: no loop per call. */
function combineTwo(a: ExecutionObserver, b: ExecutionObserver): ExecutionObserver {
  const observer: ExecutionObserver = {
    enqueued: (e, created) => {
      a.enqueued?.(e, created)
      b.enqueued?.(e, created)
    },
    attemptStarted: (attempt, queuedForMs) => {
      a.attemptStarted?.(attempt, queuedForMs)
      b.attemptStarted?.(attempt, queuedForMs)
    },
    attemptEnded: (attempt, outcome, ms) => {
      a.attemptEnded?.(attempt, outcome, ms)
      b.attemptEnded?.(attempt, outcome, ms)
    },
    recovered: (taskId, status) => {
      a.recovered?.(taskId, status)
      b.recovered?.(taskId, status)
    },
    storageError: (operation, error) => {
      a.storageError?.(operation, error)
      b.storageError?.(operation, error)
    },
  }
  const steps = [a, b].filter((o) => o.withinStep !== undefined) as Required<
    Pick<ExecutionObserver, 'withinStep'>
  >[]
  if (steps.length === 2)
    observer.withinStep = <T>(attempt: AttemptInfo, step: StepInfo, fn: () => Promise<T>): Promise<T> =>
      steps[0]!.withinStep(attempt, step, () => steps[1]!.withinStep(attempt, step, fn))
  else if (steps.length === 1) {
    const only = steps[0]!
    observer.withinStep = <T>(attempt: AttemptInfo, step: StepInfo, fn: () => Promise<T>): Promise<T> =>
      only.withinStep(attempt, step, fn)
  }
  return observer
}

/**
 * Why the server is not ready, or `undefined` when it is (`/readyz`). `unreachable`: why the
 * database did not answer the readiness ping (PostgreSQL), which goes before the executor's own
 * last storage failure (noticed within its poll interval, and cleared by its next success).
 */
export function notReadyReason(engine: Engine, stopping: boolean, unreachable?: string): string | undefined {
  if (stopping) return 'draining: the server is stopping'
  const { executor } = engine
  if (!executor.isRunning) return 'the executor has not started'
  if (unreachable !== undefined) return unreachable
  const failure = executor.storageFailure
  if (failure)
    return `the database is unreachable: ${failure.operation} failed at ${new Date(failure.at).toISOString()} (${failure.message}) and no storage call has succeeded since`
  return undefined
}
