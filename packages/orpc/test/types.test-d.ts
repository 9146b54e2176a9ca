/** Compile-time tests (npm run typecheck): remote and procedure tasks are typed by the app's router. */
import type { RouterClient } from '@orpc/server'
import { expectTypeOf } from 'vitest'
import { createClient } from '@ratchet/client'
import { createAppClient, procedureTask, remoteTasks, type RatchetCallContext } from '@ratchet/orpc'
import type { AppRouter } from './app-router'

const app = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
  url: 'http://app.test/rpc',
  secret: 'app-secret-0123456789abcdef0123456789',
})
const tasks = {
  ...remoteTasks(app, {
    say: { procedure: 'echo.say' },
    fail: { procedure: 'fail.withStatus', id: 'fail-task' },
  }),
  direct: procedureTask({ id: 'direct' }, app.echo.say),
}
expectTypeOf(tasks.say.id).toEqualTypeOf<'say'>()
expectTypeOf(tasks.fail.id).toEqualTypeOf<'fail-task'>()

const client = createClient<typeof tasks>({ url: 'http://localhost:8787' })
expectTypeOf(client.tasks.say.enqueue).parameter(0).toEqualTypeOf<{ text: string }>()
expectTypeOf(client.tasks.direct.run({ text: 'x' })).resolves.toEqualTypeOf<{
  said: string
  executionId: string
  attempt: number
  idempotencyKey: string
}>()

// Every task option, the recovery budget included, can be set on a remote or procedure task.
const budgeted = {
  ...remoteTasks(app, { say: { procedure: 'echo.say', maxRecoveries: 0 } }),
  direct: procedureTask({ id: 'direct', maxRecoveries: 10 }, app.echo.say),
}
expectTypeOf(budgeted.say.maxRecoveries).toEqualTypeOf<number>()

// @ts-expect-error no such procedure in the app's router
remoteTasks(app, { nope: { procedure: 'echo.shout' } })
// @ts-expect-error wrong input type for the procedure
void client.tasks.say.enqueue({ text: 1 })
