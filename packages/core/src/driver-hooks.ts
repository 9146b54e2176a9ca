import { RunContext } from './run-context'
import type { StepRow } from './storage'
import type { TaskContext } from './task-types'

/**
 * What a task needs to drive a durable function that runs elsewhere (an app-hosted function,
 * see `@ratchet/orpc`): it mirrors the remote function's steps and waits onto its own context,
 * and needs three things a task's body does not.
 */
export interface DurableDriver {
  /** The record as of this run's claim, in position order (what the remote side replays). */
  recorded(): Promise<StepRow[]>
  /**
   * Keeps the run from parking while the driver works outside any step (an HTTP call), until
   * the returned function is called. Without it, a run whose only calls so far are blocked
   * waits parks as soon as they block.
   */
  hold(): () => void
  /** Resolves once every step and wait called so far has returned, thrown or blocked. */
  decided(): Promise<void>
  /**
   * Whether `error` is a record's result (a step's recorded failure, a wait's timeout, a child's
   * error): the remote function sees those. Any other error a call rejects with (a stale run's
   * fenced write, an oversized value) ends the run instead.
   */
  isRecorded(error: unknown): boolean
}

/**
 * The driver hooks of a run's context. Throws `TypeError` for a context the engine did not make
 * (a hand-made fake in a unit test).
 */
export function durableDriver(ctx: TaskContext): DurableDriver {
  if (!(ctx instanceof RunContext))
    throw new TypeError('durableDriver: not a context made by the Ratchet engine')
  return {
    recorded: () => ctx.recorded(),
    hold: () => ctx.hold(),
    decided: () => ctx.decided(),
    isRecorded: (error) => ctx.recordedFailureOf(error) !== undefined,
  }
}
