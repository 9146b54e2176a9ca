/**
 * Compile-time tests (checked by `npm run typecheck`): typed handles from a type-only import
 * of a tasks module.
 */
import { expectTypeOf } from 'vitest'
import { createClient, type Enqueued } from '@ratchet/client'
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

// typed handles: outputs inferred for get, wait and run
expectTypeOf(client.tasks.sendWelcomeEmail.run({ userId: 'u', email: 'a@b.co' })).resolves.toEqualTypeOf<{
  messageId: string
  to: string
}>()
expectTypeOf(client.tasks.sendWelcomeEmail.get('id'))
  .resolves.toHaveProperty('output')
  .toEqualTypeOf<{ messageId: string; to: string } | undefined>()
// @ts-expect-error run checks the input like enqueue
void client.tasks.sendWelcomeEmail.run({ userId: 'u' })
