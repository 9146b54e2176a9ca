import type { IncomingHttpHeaders } from 'node:http'
import { implement, ORPCError } from '@orpc/server'
import { contract, type TaskInfo } from '@ratchet/contract'
import {
  NotFoundError,
  PayloadTooLargeError,
  silentLogger,
  summarizeExecution,
  TaskSourceError,
  toJsonSchema,
  ValidationError,
  type Engine,
  type Logger,
} from '@ratchet/core'
import {
  toApiExecution,
  toApiExecutionSummary,
  toApiHistoryEvent,
  toApiStep,
  toApiTaskQueue,
  toApiTaskStats,
  toApiThroughputBucket,
} from './api-mapping'
import { authenticate, type ApiKey } from './auth'
import {
  apiErrors,
  InternalError,
  isOutage,
  isUpstreamFailure,
  outageReason,
  toApiError,
} from './error-mapping'
import type { WatchHub } from './watch'

export interface RequestContext {
  headers: IncomingHttpHeaders
  /**
   * The peer address of the connection (logged with a refused key). Behind a reverse proxy it
   * is the proxy's: X-Forwarded-For is not read, since any client can send it and the server
   * cannot tell whether a proxy in front of it set it.
   */
  remoteAddress: string | undefined
  /**
   * The name of the API key, when the HTTP layer already checked it before decoding the body
   * (createServer does): the middleware then does not check it again. Set only by the server,
   * never from the request.
   */
  apiKeyName?: string
  /**
   * What the router tells the HTTP layer back (oRPC copies the context, not this object):
   * `route`, set once a procedure matched, is its path (`executions.get`), the bounded route
   * label of the HTTP metrics.
   */
  http?: { route?: string }
}

/** What the middleware adds for the handlers once a request is authenticated. */
export interface AuthenticatedContext {
  /** The name of the API key the request presented (never its secret); unset without keys. */
  apiKeyName: string | undefined
  /** The server's logger bound to `procedure` and `apiKeyName`. */
  logger: Logger
}

export interface RouterDeps {
  engine: Engine
  apiKeys: readonly ApiKey[]
  watches: WatchHub
  /** @default silent */
  logger?: Logger
}

export const UNAUTHORIZED_MESSAGE = 'missing or invalid API key (Authorization: Bearer <key>)'

/** Longest a wait request is held by default. */
const DEFAULT_WAIT_MS = 25_000

/**
 * The contract implemented on the engine. Every procedure passes one middleware that
 * authenticates (when keys are configured), puts the key's name and a logger bound to it in
 * the context, and maps engine errors to API errors. Logs name the key, never its secret.
 */
export function createRouter({ engine, apiKeys, watches, logger = silentLogger }: RouterDeps) {
  const os = implement(contract)
    .$context<RequestContext>()
    // Errors are built with `apiErrors`, the typed constructors of the contract's common error
    // map: the middleware's own `errors` is typed by the merge of every procedure's map, where
    // executions.wakeup's NOT_FOUND (data { key }) hides everyone else's (data { id }).
    .use(async ({ context, next, path }) => {
      const procedure = path.join('.')
      if (context.http) context.http.route = procedure
      let apiKeyName: string | undefined
      if (apiKeys.length > 0) {
        apiKeyName = context.apiKeyName ?? authenticate(apiKeys, context.headers.authorization)
        if (apiKeyName === undefined) {
          logger.warn(
            { procedure, remoteAddress: context.remoteAddress },
            'request rejected: missing or invalid API key',
          )
          throw apiErrors.UNAUTHORIZED({ message: UNAUTHORIZED_MESSAGE })
        }
      }
      const log = logger.child(apiKeyName === undefined ? { procedure } : { procedure, apiKeyName })
      try {
        const result = await next({ context: { apiKeyName, logger: log } satisfies AuthenticatedContext })
        log.debug({}, 'request handled')
        return result
      } catch (error) {
        const apiError = toApiError(error)
        if (apiError instanceof ORPCError) {
          // A 4xx is the client's mistake: a quiet line, no stack. (A 5xx ORPCError is logged
          // by the handler's interceptor.)
          if (apiError.status < 500)
            log.debug({ code: apiError.code, status: apiError.status }, 'request returned an error')
          // The database's outage: one quiet line per request, no stack (the executor logs the
          // outage itself once, and /readyz reports it).
          else if (isOutage(apiError))
            log.warn(
              { code: apiError.code, status: apiError.status, reason: outageReason(apiError) },
              'request refused: the database is unreachable (503, retryable)',
            )
          else if (isUpstreamFailure(apiError))
            log.warn({ code: apiError.code, status: apiError.status }, apiError.message)
          throw apiError
        }
        // A fault: logged here, with the procedure and key, and answered with a bare 500.
        log.error({ err: apiError }, 'request failed')
        throw new InternalError(apiError)
      }
    })

  return os.router({
    executions: {
      enqueue: os.executions.enqueue.handler(async ({ input, context }) => {
        const { execution, created } = await engine.enqueue(input.taskId, input.input, input.options ?? {})
        context.logger.debug({ executionId: execution.id, taskId: execution.taskId, created }, 'enqueued')
        return { execution: toApiExecution(execution), created }
      }),
      enqueueMany: os.executions.enqueueMany.handler(async ({ input, context }) => {
        const requests = input.items.map((item) => ({
          task: item.taskId,
          input: item.input,
          options: item.options ?? {},
        }))
        const results = await engine.enqueueMany(requests).catch((error: unknown) => {
          throw atItem(error)
        })
        context.logger.debug(
          { count: results.length, created: results.filter((r) => r.created).length },
          'enqueued a batch',
        )
        return {
          results: results.map(({ execution, created }) => ({
            execution: toApiExecutionSummary(summarizeExecution(execution)),
            created,
          })),
        }
      }),
      get: os.executions.get.handler(async ({ input }) =>
        toApiExecution(await engine.get(input.id, input.asOf ? { asOf: input.asOf } : {})),
      ),
      list: os.executions.list.handler(async ({ input }) => {
        const page = await engine.list(input)
        return { items: page.items.map(toApiExecutionSummary), nextCursor: page.nextCursor }
      }),
      cancelMany: os.executions.cancelMany.handler(async ({ input }) => ({
        results: await engine.cancelMany(input.ids),
      })),
      retryMany: os.executions.retryMany.handler(async ({ input }) => ({
        results: await engine.retryMany(input.ids),
      })),
      cancel: os.executions.cancel.handler(async ({ input }) =>
        toApiExecution(await engine.cancel(input.id)),
      ),
      retry: os.executions.retry.handler(async ({ input }) => toApiExecution(await engine.retry(input.id))),
      watch: os.executions.watch.handler(async ({ input, signal, lastEventId }) => {
        // Checked before streaming, so an unknown id is a plain NOT_FOUND response.
        await engine.get(input.id)
        return mapStreamErrors(watches.watch(input.id, lastEventId, signal))
      }),
      history: os.executions.history.handler(async ({ input: { id, ...query } }) => {
        const page = await engine.history(id, query)
        return { items: page.items.map(toApiHistoryEvent), nextCursor: page.nextCursor }
      }),
      steps: os.executions.steps.handler(async ({ input: { id, ...query } }) => {
        const page = await engine.steps(id, query)
        return { items: page.items.map(toApiStep), nextCursor: page.nextCursor }
      }),
      changes: os.executions.changes.handler(async ({ input, signal, lastEventId }) => {
        // Checked before streaming, so a bad Last-Event-ID is a plain 400 response.
        const from = await watches.changesStart(lastEventId)
        return mapStreamErrors(watches.changes(input, from, signal))
      }),
      signal: os.executions.signal.handler(async ({ input }) =>
        toApiExecution(await engine.signal(input.id, input.name, input.payload)),
      ),
      wakeup: os.executions.wakeup.handler(async ({ input, errors }) => {
        try {
          return await engine.wakeup(
            input.key,
            input.error ? { error: input.error } : { output: input.output },
          )
        } catch (error) {
          if (error instanceof NotFoundError && error.wakeupKey !== undefined)
            throw errors.NOT_FOUND({ message: error.message, data: { key: error.wakeupKey } })
          throw error
        }
      }),
      wait: os.executions.wait.handler(async ({ input, signal }) =>
        toApiExecution(
          await watches.wait(input.id, {
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
    stats: {
      tasks: os.stats.tasks.handler(async () => ({
        tasks: (await engine.taskStats()).map(toApiTaskStats),
      })),
      throughput: os.stats.throughput.handler(async ({ input }) => {
        const result = await engine.throughput(input)
        return { bucketMs: result.bucketMs, items: result.items.map(toApiThroughputBucket) }
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
          maxRecoveries: t.maxRecoveries,
          on: [...t.on],
          retentionMs: t.retentionMs ?? engine.retention.defaultRetentionMs ?? 'forever',
          debounce: t.debounce
            ? { periodMs: t.debounce.periodMs, maxWaitMs: t.debounce.maxWaitMs ?? null }
            : null,
        })),
      })),
      pause: os.tasks.pause.handler(async ({ input, context }) => {
        const queue = await engine.pauseTask(input.taskId)
        context.logger.info({ taskId: queue.taskId }, 'task queue paused')
        return toApiTaskQueue(queue)
      }),
      resume: os.tasks.resume.handler(async ({ input, context }) => {
        const queue = await engine.resumeTask(input.taskId)
        context.logger.info({ taskId: queue.taskId }, 'task queue resumed')
        return toApiTaskQueue(queue)
      }),
      refresh: os.tasks.refresh.handler(async ({ errors }) => {
        try {
          const { sources } = await engine.refreshTasks()
          return {
            sources: sources.map(({ name, added, updated, missing }) => ({ name, added, updated, missing })),
          }
        } catch (error) {
          // Two sources (or a source and the tasks module) claim one id: the configuration's
          // mistake, which asking again will not fix.
          if (error instanceof TaskSourceError && error.conflict)
            throw apiErrors.CONFLICT({ message: error.message, data: {} })
          // The app's outage or mistake, not the server's: a 502 the caller may retry.
          if (error instanceof TaskSourceError)
            throw errors.TASK_SOURCE_UNAVAILABLE({
              message: error.message,
              data: { source: error.sourceName, retryable: true },
            })
          throw error
        }
      }),
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

/**
 * An `enqueueMany` error as the request's client sees it: the engine names the failing request
 * by its index (`request 3:`, issue paths `[3, 'input', …]`, field `3.input`); over the API it
 * is item 3 of `items` (`items.3:`, paths `['items', 3, 'input', …]`, field `items.3.input`).
 */
function atItem(error: unknown): unknown {
  const renamed = (message: string) => message.replace(/^request (\d+):/, 'items.$1:')
  if (error instanceof ValidationError)
    return new ValidationError(
      renamed(error.message),
      error.issues.map((issue) => ({ ...issue, path: ['items', ...issue.path] })),
    )
  if (error instanceof PayloadTooLargeError)
    return new PayloadTooLargeError(`items.${error.field}`, error.sizeBytes, error.limitBytes)
  if (error instanceof Error) error.message = renamed(error.message)
  return error
}
