import type { IncomingHttpHeaders } from 'node:http'
import { implement, ORPCError } from '@orpc/server'
import {
  contract,
  type Execution as ApiExecution,
  type HistoryEvent as ApiHistoryEvent,
  type TaskInfo,
} from '@ratchet/contract'
import { toJsonSchema, type Engine, type Execution, type HistoryEvent } from '@ratchet/core'
import { authenticate, type ApiKey } from './auth'
import { toApiError } from './error-mapping'

export interface RequestContext {
  headers: IncomingHttpHeaders
}

export interface RouterDeps {
  engine: Engine
  apiKeys: readonly ApiKey[]
}

/** Longest a wait request is held by default. */
const DEFAULT_WAIT_MS = 25_000

/**
 * The contract implemented on the engine. Every procedure passes one middleware that
 * authenticates (when keys are configured) and maps engine errors to API errors.
 */
export function createRouter({ engine, apiKeys }: RouterDeps) {
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
        })),
      })),
    },
  })
}

const date = (ms: number) => new Date(ms)
const maybeDate = (ms: number | null) => (ms === null ? null : new Date(ms))

export function toApiExecution(e: Execution): ApiExecution {
  return {
    ...e,
    runAt: date(e.runAt),
    createdAt: date(e.createdAt),
    updatedAt: date(e.updatedAt),
    startedAt: maybeDate(e.startedAt),
    finishedAt: maybeDate(e.finishedAt),
    deadlineAt: maybeDate(e.deadlineAt),
  }
}

function toApiHistoryEvent(e: HistoryEvent): ApiHistoryEvent {
  return { ...e, at: date(e.at) }
}
