import type { IncomingHttpHeaders } from 'node:http'
import { implement, ORPCError } from '@orpc/server'
import { contract, type TaskInfo } from '@ratchet/contract'
import { toJsonSchema, type Engine } from '@ratchet/core'
import { toApiExecution, toApiHistoryEvent } from './api-mapping'
import { authenticate, type ApiKey } from './auth'
import { toApiError } from './error-mapping'
import type { WatchHub } from './watch'

export interface RequestContext {
  headers: IncomingHttpHeaders
}

export interface RouterDeps {
  engine: Engine
  apiKeys: readonly ApiKey[]
  watches: WatchHub
}

/** Longest a wait request is held by default. */
const DEFAULT_WAIT_MS = 25_000

/**
 * The contract implemented on the engine. Every procedure passes one middleware that
 * authenticates (when keys are configured) and maps engine errors to API errors.
 */
export function createRouter({ engine, apiKeys, watches }: RouterDeps) {
  const os = implement(contract)
    .$context<RequestContext>()
    .use(async ({ context, next }) => {
      if (apiKeys.length > 0) {
        if (authenticate(apiKeys, context.headers.authorization) === undefined) {
          throw new ORPCError('UNAUTHORIZED', {
            status: 401,
            message: 'missing or invalid API key (Authorization: Bearer <key>)',
            defined: true,
          })
        }
      }
      try {
        return await next()
      } catch (error) {
        throw toApiError(error)
      }
    })

  return os.router({
    executions: {
      enqueue: os.executions.enqueue.handler(async ({ input }) => {
        const { execution, created } = await engine.enqueue(input.taskId, input.input, input.options ?? {})
        return { execution: toApiExecution(execution), created }
      }),
      get: os.executions.get.handler(async ({ input }) =>
        toApiExecution(await engine.get(input.id, input.asOf ? { asOf: input.asOf } : {})),
      ),
      list: os.executions.list.handler(async ({ input }) => {
        const page = await engine.list(input)
        return { items: page.items.map(toApiExecution), nextCursor: page.nextCursor }
      }),
      cancel: os.executions.cancel.handler(async ({ input }) =>
        toApiExecution(await engine.cancel(input.id)),
      ),
      retry: os.executions.retry.handler(async ({ input }) => toApiExecution(await engine.retry(input.id))),
      watch: os.executions.watch.handler(async ({ input, signal, lastEventId }) => {
        // Checked before streaming, so an unknown id is a plain NOT_FOUND response.
        await engine.get(input.id)
        return mapStreamErrors(watches.watch(input.id, lastEventId, signal))
      }),
      history: os.executions.history.handler(async ({ input }) => ({
        items: (await engine.history(input.id)).map(toApiHistoryEvent),
      })),
      signal: os.executions.signal.handler(async ({ input }) =>
        toApiExecution(await engine.signal(input.executionId, input.name, input.payload)),
      ),
      wakeup: os.executions.wakeup.handler(({ input }) =>
        engine.wakeup(input.key, input.error ? { error: input.error } : { output: input.output }),
      ),
      wait: os.executions.wait.handler(async ({ input, signal }) =>
        toApiExecution(
          await engine.waitFor(input.id, {
            timeoutMs: input.timeoutMs ?? DEFAULT_WAIT_MS,
            ...(signal ? { signal } : {}),
          }),
        ),
      ),
    },
    events: {
      publish: os.events.publish.handler(({ input }) =>
        engine.publish(input.event, input.id !== undefined ? { id: input.id } : {}),
      ),
      list: os.events.list.handler(async ({ input }) => {
        const page = await engine.listEvents(input)
        return {
          items: page.items.map((e) => ({ ...e, createdAt: new Date(e.createdAt) })),
          nextCursor: page.nextCursor,
        }
      }),
    },
    tasks: {
      list: os.tasks.list.handler(() => ({
        tasks: engine.registry.list().map((t): TaskInfo => ({
          id: t.id,
          key: engine.registry.keyFor(t.id) ?? null,
          description: t.description ?? null,
          inputSchema: toJsonSchema(t.inputSchema, 'input') ?? null,
          outputSchema: toJsonSchema(t.outputSchema, 'output') ?? null,
          timeoutMs: t.timeoutMs,
          priority: t.priority,
          retry: t.retry,
          on: [...t.on],
        })),
      })),
    },
  })
}

/** Errors thrown while streaming bypass the middleware: map them to API errors here. */
async function* mapStreamErrors<T>(events: AsyncGenerator<T>): AsyncGenerator<T> {
  try {
    yield* events
  } catch (error) {
    throw toApiError(error)
  }
}
