import {
  deserializeError,
  durableDriver,
  serializeError,
  type DurableDriver,
  type StepKind,
  type StepRow,
  type TaskContext,
} from '@ratchet/core'
import {
  PROTOCOL_VERSION,
  type InvokeRequest,
  type InvokeResult,
  type ManifestFunction,
  type NewOp,
  type RecordEntry,
} from './protocol'

/**
 * Sends one invocation to the app, calls `onOp` with each new op as the answer streams in, and
 * resolves with the result; rejects with a retryable or terminal error (see app-functions.ts),
 * possibly after some ops.
 */
export type Invoke = (
  request: InvokeRequest,
  signal: AbortSignal,
  timeoutMs: number,
  onOp: (op: NewOp) => void,
) => Promise<InvokeResult>

/** @default 60_000: the time limit of one invocation when the function sets no `timeoutMs`. */
const DEFAULT_INVOCATION_TIMEOUT_MS = 60_000

type Outcome = { status: 'done'; value: unknown } | { status: 'failed'; error: unknown }
interface Entry {
  name: string
  kind: StepKind
  outcome?: Outcome
}

/**
 * The body of the server-side task that stands for an app-hosted function. It mirrors the
 * function onto its own durable context: the record is replayed through the same calls (so a
 * satisfied wait resolves and an unsatisfied one blocks), the app is invoked with the outcome
 * of each entry, and every new step or wait the app reports is made through the context, which
 * records it under this run's fence. When the app can go no further and every new wait blocks,
 * the run blocks too, and the engine parks the execution until something wakes it.
 *
 * Failure semantics: an invocation that fails (HTTP error, timeout, bad answer) fails the run's
 * attempt with that error, retried with the function's back-off when retryable; what was
 * recorded before stays recorded. A `failed` result is thrown as the run's error.
 */
export function driveAppFunction(fn: ManifestFunction, invoke: Invoke) {
  const invocationTimeoutMs = fn.timeoutMs ?? DEFAULT_INVOCATION_TIMEOUT_MS
  return async (input: unknown, ctx: TaskContext): Promise<unknown> => {
    const driver = durableDriver(ctx)
    const release = driver.hold()
    try {
      const entries: Entry[] = []
      const track = (name: string, kind: StepKind, call: Promise<unknown>) => {
        const entry: Entry = { name, kind }
        entries.push(entry)
        call.then(
          (value) => (entry.outcome = { status: 'done', value }),
          (error: unknown) => (entry.outcome = { status: 'failed', error }),
        )
      }
      const rows = await driver.recorded()
      rows.forEach((row, i) => {
        if (row.position !== i)
          throw new Error(
            `the record of ${ctx.executionId} has no entry at position ${i}: not written by a driver`,
          )
        track(row.name, row.kind, replayCall(ctx, row))
      })
      await driver.decided()
      ctx.signal.throwIfAborted()
      let record = recordOf(entries, driver)
      for (;;) {
        const before = entries.length
        // Each op is made through the context as its line arrives: recorded even if the
        // invocation is cut off later.
        const answered = invoke(
          {
            v: PROTOCOL_VERSION,
            function: fn.id,
            executionId: ctx.executionId,
            attempt: ctx.attempt,
            input,
            record,
            mode: fn.mode,
            budgetMs: fn.maxInvocationMs,
          },
          ctx.signal,
          invocationTimeoutMs,
          (op) => track(op.name, op.kind, newCall(ctx, op)),
        )
        const result = await answered.catch(async (error: unknown) => {
          // The ops that arrived are being written: let them be, then fail the attempt.
          await driver.decided()
          throw error
        })
        await driver.decided()
        ctx.signal.throwIfAborted()
        // Before the result: what must end the run (a fenced write, an oversized value) throws here.
        record = recordOf(entries, driver)
        if (result.status === 'completed') return result.output
        if (result.status === 'failed') throw deserializeError(result.error)
        if (result.status === 'yield') continue
        // Blocked: invoke again only if one of the new waits is already over (a due sleep, a
        // signal already in the inbox, a spawn's id); else every one blocks and so does the run.
        // New steps are settled too, but the app has used their values already.
        if (entries.slice(before).some((entry) => entry.kind !== 'step' && entry.outcome !== undefined))
          continue
        release()
        return await new Promise<never>(() => {})
      }
    } finally {
      release()
    }
  }
}

/** The outcome of every entry so far; throws an error that must end the run instead. */
function recordOf(entries: readonly Entry[], driver: DurableDriver): RecordEntry[] {
  return entries.map(({ name, kind, outcome }): RecordEntry => {
    if (outcome === undefined) return { name, kind, status: 'waiting' }
    if (outcome.status === 'done')
      return outcome.value === undefined
        ? { name, kind, status: 'done' }
        : { name, kind, status: 'done', value: outcome.value }
    if (!driver.isRecorded(outcome.error)) throw outcome.error
    return { name, kind, status: 'failed', error: serializeError(outcome.error) }
  })
}

/** Replays a recorded entry through the call that made it (its arguments come from the record). */
function replayCall(ctx: TaskContext, row: StepRow): Promise<unknown> {
  switch (row.kind) {
    case 'step':
      return ctx.step(row.name, () => {
        throw new Error(`step "${row.name}" is recorded but has no result`)
      })
    case 'sleep':
      return ctx.sleep(row.name, 0)
    case 'signal':
      return ctx.waitForSignal(row.name, { signal: row.signalName ?? row.name })
    case 'wakeup':
      return ctx.waitForWakeup(row.name, { key: row.wakeupKey ?? '' })
    case 'child':
      return ctx.child(row.name, '', undefined)
    case 'spawn':
      return ctx.spawn(row.name, '', undefined)
  }
}

/** Makes a call the app asked for for the first time. */
function newCall(ctx: TaskContext, op: NewOp): Promise<unknown> {
  switch (op.kind) {
    case 'step':
      if (op.status === 'done') return ctx.step(op.name, () => op.value)
      return ctx.step(op.name, () => {
        throw deserializeError(op.error)
      })
    case 'sleep':
      return op.until === undefined ? ctx.sleep(op.name, op.ms ?? 0) : ctx.sleepUntil(op.name, op.until)
    case 'signal':
      return ctx.waitForSignal(op.name, {
        signal: op.signal,
        ...(op.timeoutMs === undefined ? {} : { timeoutMs: op.timeoutMs }),
      })
    case 'wakeup':
      return ctx.waitForWakeup(op.name, {
        key: op.key,
        ...(op.timeoutMs === undefined ? {} : { timeoutMs: op.timeoutMs }),
      })
    case 'child':
      return ctx.child(op.name, op.task, op.input, op.options ?? {})
    case 'spawn':
      return ctx.spawn(op.name, op.task, op.input, op.options ?? {})
  }
}
