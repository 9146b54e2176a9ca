/**
 * Compile-time tests (checked by `npm run typecheck`): typed handles from a type-only import
 * of a tasks module.
 */
import type { ClientPromiseResult } from '@orpc/client'
import { expectTypeOf } from 'vitest'
import {
  createClient,
  ExecutionFailedError,
  isDefinedError,
  RatchetError,
  safe,
  WaitTimeoutError,
  type ChangeEvent,
  type ContractError,
  type Enqueued,
  type ErrorCode,
  type Execution,
  type ExecutionOf,
  type ExecutionStatus,
  type Issue,
  type WatchEventOf,
} from '@ratchet/client'
import type { tasks } from '@ratchet/server/example-tasks'

const client = createClient<typeof tasks>({ url: 'http://localhost:8787' })

// input types come from each task's input schema (before defaults apply)
expectTypeOf(client.tasks.generateReport.enqueue).parameter(0).toEqualTypeOf<{
  accountId: string
  month: string
  chunks?: number | undefined
}>()
expectTypeOf(client.tasks.sendWelcomeEmail.enqueue({ userId: 'u', email: 'a@b.co' })).resolves.toEqualTypeOf<
  Enqueued<{ messageId: string; to: string }>
>()

// @ts-expect-error wrong input type
void client.tasks.chargeInvoice.enqueue({ invoiceId: 'i', amountCents: '100' })
// @ts-expect-error missing field
void client.tasks.sendWelcomeEmail.enqueue({ userId: 'u' })
// @ts-expect-error unknown task key
void client.tasks.noSuchTask.enqueue({})
// @ts-expect-error unknown enqueue option
void client.tasks.chargeInvoice.enqueue({ invoiceId: 'i', amountCents: 1 }, { delay: 5 })

type Welcome = { messageId: string; to: string }

// typed handles: outputs inferred for get, wait, cancel, watch and run
expectTypeOf(client.tasks.sendWelcomeEmail.run({ userId: 'u', email: 'a@b.co' })).resolves.toEqualTypeOf<{
  messageId: string
  to: string
}>()
expectTypeOf(client.tasks.sendWelcomeEmail.get('id'))
  .resolves.toHaveProperty('output')
  .toEqualTypeOf<{ messageId: string; to: string } | undefined>()
// @ts-expect-error run checks the input like enqueue
void client.tasks.sendWelcomeEmail.run({ userId: 'u' })
expectTypeOf(client.tasks.sendWelcomeEmail.wait('id')).resolves.toEqualTypeOf<ExecutionOf<Welcome>>()
expectTypeOf(client.tasks.sendWelcomeEmail.wait('id'))
  .resolves.toHaveProperty('output')
  .toEqualTypeOf<Welcome | undefined>()
expectTypeOf(client.tasks.sendWelcomeEmail.cancel('id')).resolves.toEqualTypeOf<ExecutionOf<Welcome>>()
expectTypeOf(client.tasks.sendWelcomeEmail.watch('id')).toEqualTypeOf<
  AsyncGenerator<WatchEventOf<Welcome>, void, undefined>
>()
for await (const event of client.tasks.sendWelcomeEmail.watch('id'))
  expectTypeOf(event.execution.output).toEqualTypeOf<Welcome | undefined>()

// contract errors are typed: safe() infers them, isDefinedError narrows to the contract's codes
{
  const [error, data, isDefined] = await safe(
    client.tasks.sendWelcomeEmail.enqueue({ userId: 'u', email: 'e' }),
  )
  expectTypeOf(data).toEqualTypeOf<Enqueued<Welcome> | undefined>()
  if (isDefinedError(error)) {
    expectTypeOf(error).toEqualTypeOf<ContractError>()
    expectTypeOf(error.code).toEqualTypeOf<ErrorCode>()
    // @ts-expect-error not a code of the contract
    if (error.code === 'INTERNAL_SERVER_ERROR') void error
    if (error.code === 'INVALID_INPUT') expectTypeOf(error.data.issues).toEqualTypeOf<Issue[]>()
    if (error.code === 'UNKNOWN_TASK') expectTypeOf(error.data.knownTaskIds).toEqualTypeOf<string[]>()
    if (error.code === 'PAYLOAD_TOO_LARGE')
      expectTypeOf(error.data).toEqualTypeOf<{ field: string; sizeBytes: number; limitBytes: number }>()
    if (error.code === 'NOT_FOUND') expectTypeOf(error.data).toEqualTypeOf<{ id: string }>()
    if (error.code === 'CONFLICT')
      expectTypeOf(error.data).toEqualTypeOf<{
        executionId?: string | undefined
        status?: ExecutionStatus | undefined
      }>()
  }
  if (isDefined) expectTypeOf(error).toEqualTypeOf<ContractError>()
  // enqueue raises no client-side error: what is not a contract error is a plain Error
  else if (error) expectTypeOf(error).toEqualTypeOf<Error>()
}

// the client's own errors are in the union of the methods that raise them
{
  const [error, , isDefined] = await safe(client.tasks.sendWelcomeEmail.run({ userId: 'u', email: 'e' }))
  if (isDefined) expectTypeOf(error).toEqualTypeOf<ContractError>()
  else if (error) expectTypeOf(error).toEqualTypeOf<Error | ExecutionFailedError | WaitTimeoutError>()
  const [waitError, waited] = await safe(client.executions.wait('id', { timeoutMs: 1000 }))
  expectTypeOf(waited).toEqualTypeOf<Execution | undefined>()
  if (waitError && !isDefinedError(waitError))
    expectTypeOf(waitError).toEqualTypeOf<Error | WaitTimeoutError>()
  // the classes are the core's, typed with the API's Execution
  if (waitError instanceof WaitTimeoutError)
    expectTypeOf(waitError.execution).toEqualTypeOf<Execution | undefined>()
  if (error instanceof ExecutionFailedError) {
    expectTypeOf(error.execution).toEqualTypeOf<Execution>()
    expectTypeOf(error.status).toEqualTypeOf<ExecutionStatus>()
  }
  if (error instanceof RatchetError) expectTypeOf(error.code).toEqualTypeOf<string>()
}

// executions.wakeup's NOT_FOUND names the key, every other NOT_FOUND the execution id
{
  const [error] = await safe(client.executions.wakeup('key', { output: 1 }))
  if (isDefinedError(error) && error.code === 'NOT_FOUND')
    expectTypeOf(error.data).toEqualTypeOf<{ key: string }>()
  const [getError] = await safe(client.executions.get('id'))
  if (isDefinedError(getError) && getError.code === 'NOT_FOUND')
    expectTypeOf(getError.data).toEqualTypeOf<{ id: string }>()
}

// every client method carries them, not only the handles (wakeup: above)
const contractErrorOf = async <T, E>(promise: ClientPromiseResult<T, E>) => {
  const [error] = await safe(promise)
  return isDefinedError(error) ? error : undefined
}
for (const call of [
  contractErrorOf(client.executions.enqueue('charge-invoice', {})),
  contractErrorOf(client.executions.get('id')),
  contractErrorOf(client.executions.list()),
  contractErrorOf(client.executions.cancel('id')),
  contractErrorOf(client.executions.retry('id')),
  contractErrorOf(client.executions.history('id')),
  contractErrorOf(client.executions.history('id', { cursor: '1', limit: 10, statusOnly: true })),
  contractErrorOf(client.executions.steps('id', { limit: 10 })),
  contractErrorOf(client.executions.cancelMany(['a', 'b'])),
  contractErrorOf(client.executions.retryMany(['a'])),
  contractErrorOf(client.taskStats()),
  contractErrorOf(client.throughput({ from: new Date(0), to: new Date() })),
  contractErrorOf(client.executions.signal('id', 'go')),
  contractErrorOf(client.executions.wait('id')),
  contractErrorOf(client.events.publish({ type: 'user.signed-up' })),
  contractErrorOf(client.events.list()),
  contractErrorOf(client.listTasks()),
])
  expectTypeOf(call).resolves.toEqualTypeOf<ContractError | undefined>()

// a list has summaries: no payloads to read by mistake
void client.executions.list().then(({ items }) => {
  expectTypeOf(items[0]!).not.toHaveProperty('input')
  expectTypeOf(items[0]!).not.toHaveProperty('output')
  expectTypeOf(items[0]!.error).toEqualTypeOf<{
    name: string
    message: string
    code?: string | undefined
  } | null>()
})
expectTypeOf(client.executions.changes({ taskId: 't' })).toEqualTypeOf<
  AsyncGenerator<ChangeEvent, void, undefined>
>()
