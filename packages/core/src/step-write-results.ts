import { ConflictError, RatchetError, RetryableError, StorageUnavailableError } from './errors'
import { ownRead } from './storage-health'
import type { StepWrite, StepWriteResult } from './storage'

/** @internal A step record queued with the write-behind, and the promise of whoever awaits it. */
export interface PendingStepWrite {
  write: StepWrite
  resolve: () => void
  reject: (error: unknown) => void
  /** Nobody awaits it (a blocking wait's record): a failure must fail the attempt's park. */
  behind: boolean
  /** When it was queued (clock ms): an old backlog is written in order, see takeStepWrites. */
  queuedAt: number
  /**
   * A call that carried it failed as unreachable: that call may have committed all the same
   * (the connection dropped during COMMIT), so the record may already be stored.
   */
  maybeWritten?: boolean
}

/** @internal A step record the storage refused (written alone, it still threw). */
export type Failed = { failed: unknown }

/** @internal What the write-behind does with a step record's outcome beside settling its promise. */
export interface StepWriteSink {
  /** It was written: a child it created is enqueued, and awaited by its parent. */
  written(entry: PendingStepWrite): void
  /** It was not written, for `error` (a blocking wait's park then fails). */
  unrecorded(entry: PendingStepWrite, error: unknown): void
  /** Its attempt no longer holds the execution (cancelled, lease lost): stop the attempt. */
  stale(entry: PendingStepWrite, error: Error): void
}

/**
 * @internal Settles the promise of one step record by what the storage said of it: written;
 * refused (the run gets the error); superseded (completed from outside: a retry that replays
 * it; or, when an earlier call that failed as unreachable may have written it, a release);
 * a wakeup key already used (`ConflictError`); or fenced off (`StaleAttemptError`, and the
 * attempt is stopped).
 */
export function deliverStepWriteResult(
  b: PendingStepWrite,
  result: StepWriteResult | Failed,
  sink: StepWriteSink,
): void {
  if (typeof result === 'object') {
    sink.unrecorded(b, result.failed)
    return b.reject(result.failed)
  }
  if (result === 'written') {
    sink.written(b)
    return b.resolve()
  }
  if (result === 'superseded' && b.maybeWritten) {
    // Most likely this very record, committed by the call whose outcome the outage hid.
    // Not the run's doing: released (no attempt used up), and the replay reads the record.
    const error = ownRead(
      new StorageUnavailableError(
        `step "${b.write.step.name}" was found recorded after the storage came back: the attempt is released to replay it`,
      ),
    )
    sink.unrecorded(b, error)
    return b.reject(error)
  }
  if (result === 'superseded') {
    // Completed from outside since this attempt read it: retry, and the replay sees it.
    const error = new RetryableError(`step "${b.write.step.name}" was completed from outside meanwhile`, {
      retryAfterMs: 0,
    })
    sink.unrecorded(b, error)
    return b.reject(error)
  }
  if (result === 'conflict') {
    const error = new ConflictError(
      `wakeup key "${b.write.step.wakeupKey}" of wait "${b.write.step.name}" is already used by another wait`,
    )
    sink.unrecorded(b, error)
    return b.reject(error)
  }
  b.reject(new StaleAttemptError(b.write.step.name))
  sink.stale(b, new StaleAttemptError(b.write.step.name))
}

/** A step write of an attempt that no longer holds its execution (cancelled, lease lost). */
export class StaleAttemptError extends RatchetError {
  constructor(step: string) {
    super('STALE_ATTEMPT', `step "${step}" was not recorded: this attempt no longer holds the execution`, {
      retryable: false,
    })
  }
}
