import type { Client } from '@orpc/client'
import { task, type RetryPolicyInput, type StandardSchemaV1, type Task } from '@ratchet/core'
import type { RatchetCallContext } from './app-client'
import { mapCallError } from './error-mapping'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any procedure of any app router
export type AnyProcedureClient = Client<RatchetCallContext, any, any, any>
/* eslint-disable @typescript-eslint/no-explicit-any -- `any` where a position is not inferred: a
   procedure's input is contravariant, so `unknown` there would match nothing */
export type ProcedureInput<P> = P extends Client<RatchetCallContext, infer I, any, any> ? I : never
export type ProcedureOutput<P> = P extends Client<RatchetCallContext, any, infer O, any> ? O : never
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface ProcedureTaskOptions<Id extends string> {
  id: Id
  /**
   * Checks the input at enqueue, so bad input is a 400 from Ratchet and never an execution.
   * @default accept any JSON (the app's procedure validates it on every call)
   */
  input?: StandardSchemaV1
  description?: string
  /** Time limit of each run (each call); past it the HTTP call is aborted. @default 60_000 */
  timeoutMs?: number
  retry?: RetryPolicyInput
  /** Runs lost in a row to a crash of the Ratchet server before it fails; see `task()`. @default 5 */
  maxRecoveries?: number
  priority?: number
  deadlineMs?: number
}

/** Accepts any input: the app validates. */
const anyInput: StandardSchemaV1 = {
  '~standard': { version: 1, vendor: 'ratchet', validate: (value) => ({ value }) },
}

/**
 * A durable task that calls one oRPC procedure of a web app through an app client
 * (`createAppClient`). Each run is one signed HTTP call carrying the execution id, the
 * attempt (a run recovered after a crash of the Ratchet server sends the same one again) and
 * the idempotency key `ratchet:<executionId>` (the same on every call, so the app can
 * deduplicate). `ctx.signal` aborts the call on timeout, cancel and shutdown. Errors
 * map by one table (error-mapping.ts): network errors and 408/429/500/502/503/504 are retried
 * (after `Retry-After` when sent); 404 and other 4xx fail at once.
 */
export function procedureTask<const Id extends string, P extends AnyProcedureClient>(
  options: ProcedureTaskOptions<Id>,
  procedure: P,
): Task<Id, ProcedureInput<P>, ProcedureInput<P>, ProcedureOutput<P>> {
  if (typeof procedure !== 'function')
    throw new TypeError(`procedureTask "${options.id}": expected a procedure of an app client`)
  const { input, ...rest } = options
  const definition = task({
    ...rest,
    input: input ?? anyInput,
    run: async (value: unknown, ctx) => {
      const meta: NonNullable<RatchetCallContext['ratchet']> = {
        executionId: ctx.executionId,
        attempt: ctx.attempt,
        idempotencyKey: `ratchet:${ctx.executionId}`,
      }
      try {
        return (await procedure(value, { signal: ctx.signal, context: { ratchet: meta } })) as unknown
      } catch (error) {
        throw mapCallError(error, meta.response, ctx.signal, meta.procedure ?? options.id)
      }
    },
  })
  return definition as unknown as Task<Id, ProcedureInput<P>, ProcedureInput<P>, ProcedureOutput<P>>
}
