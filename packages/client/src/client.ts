import { createORPCClient, getEventMeta, type ClientPromiseResult } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import { ClientRetryPlugin, type ClientRetryPluginContext } from '@orpc/client/plugins'
import type { ContractRouterClient, ErrorFromErrorMap, ORPCErrorFromErrorMap } from '@orpc/contract'
import type {
  BulkResult,
  ChangeEvent,
  Contract,
  errorMap,
  wakeupErrorMap,
  EnqueueOptions,
  Execution,
  ExecutionSummary,
  HistoryPage,
  ListInput,
  StepsPage,
  TaskStats,
  Throughput,
  ThroughputInput,
  PublishResult,
  RecordedEvent,
  TaskInfo,
  TaskRefresh,
  TaskQueue,
  WatchEvent,
} from '@ratchet/contract'
import { ExecutionFailedError, WaitTimeoutError } from './errors'
import { ReconnectPolicy, untilAborted } from './reconnect'
import type { EventOf, TaskInput, TaskKeys, TaskOutput } from './task-types'

/**
 * A typed error of the contract: one `ORPCError<code, data>` per code of its error map
 * (UNAUTHORIZED, NOT_FOUND, UNKNOWN_TASK, INVALID_INPUT with `data.issues`, CONFLICT,
 * PAYLOAD_TOO_LARGE). The server raises these with `defined: true`, so `isDefinedError(error)`
 * is true for them, and narrows to this type, on every client method.
 */
export type ContractError = ORPCErrorFromErrorMap<typeof errorMap>

/**
 * What a client method rejects with: a `ContractError`, `TClientError` (the errors the client
 * raises itself, e.g. `WaitTimeoutError`), or any other `Error`: a network failure, a 5xx or
 * other `ORPCError` outside the contract (`defined: false`), an aborted signal's reason.
 * (`RatchetError` is the base class of Ratchet's own error classes, not this union.)
 */
export type ClientError<TClientError = never> = ErrorFromErrorMap<typeof errorMap> | TClientError

/**
 * A promise of a client method: resolves with `TOutput`, rejects with
 * `ClientError<TClientError>`. `safe()` infers both, so `isDefinedError(error)` narrows
 * `error.code` to the contract's codes and `error.data` to that code's data.
 *
 * ```ts
 * const [error, data] = await safe(ratchet.tasks.sendWelcomeEmail.enqueue(input))
 * if (isDefinedError(error) && error.code === 'INVALID_INPUT') console.log(error.data.issues)
 * ```
 */
export type RatchetPromise<TOutput, TClientError = never> = ClientPromiseResult<
  TOutput,
  ClientError<TClientError>
>

/** What `executions.wakeup` rejects with: its NOT_FOUND names the key (`data.key`). */
export type WakeupError = ErrorFromErrorMap<Omit<typeof errorMap, 'NOT_FOUND'> & typeof wakeupErrorMap>

export interface ClientOptions {
  /** Base URL of the Ratchet server, e.g. `https://ratchet.internal:8787`. */
  url: string
  /** An API key of the server (`RATCHET_API_KEYS`). */
  apiKey?: string
  /** A fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch
  /** Extra headers on every request. */
  headers?: Record<string, string>
}

/** An enqueued execution. `created` is false when the idempotency key matched an existing one, or a debounced enqueue collapsed into one. */
export interface Enqueued<TOutput = unknown> {
  executionId: string
  execution: Execution
  created: boolean
  /** Phantom: the task's output type, for typed helpers. Never set. */
  readonly '~output'?: TOutput
}

/** One execution enqueued by `enqueueMany`: its summary (no payloads), as `list` shows it. */
export interface EnqueuedSummary<TOutput = unknown> {
  executionId: string
  execution: ExecutionSummary
  created: boolean
  /** Phantom: the task's output type, for typed helpers. Never set. */
  readonly '~output'?: TOutput
}

/** An item of `executions.enqueueMany`. */
export interface EnqueueItem {
  /** Task id, or its key in the server's tasks object. */
  taskId: string
  input: unknown
  options?: EnqueueOptions
}

/** An execution whose output has its task's type (set once `status` is `completed`). */
export type ExecutionOf<TOutput> = Omit<Execution, 'output'> & { output: TOutput | undefined }

/** A watched status change whose execution has its task's output type. */
export type WatchEventOf<TOutput> = Omit<WatchEvent, 'execution'> & { execution: ExecutionOf<TOutput> }

/**
 * The typed calls of one task. Every promise is a `RatchetPromise`: it rejects with a
 * `ContractError` (narrow it with `isDefinedError`), the client's own errors named on the
 * method, or another `Error` (network, 5xx, an aborted signal's reason).
 */
export interface TaskHandle<TInput, TOutput> {
  /**
   * Validates `input` on the server against the task's schema and enqueues an execution.
   * Rejects with a typed error: INVALID_INPUT (with issues), UNKNOWN_TASK, CONFLICT
   * (idempotency key reused with other input), PAYLOAD_TOO_LARGE, UNAUTHORIZED.
   */
  enqueue(input: TInput, options?: EnqueueOptions): RatchetPromise<Enqueued<TOutput>>
  /**
   * Enqueues up to 1000 executions of this task in one request and one transaction: every
   * input valid and all stored, or the request rejects (INVALID_INPUT naming `items.<index>`)
   * and none is. Results are in order; idempotency keys work per item.
   */
  enqueueMany(
    items: readonly { input: TInput; options?: EnqueueOptions }[],
  ): RatchetPromise<EnqueuedSummary<TOutput>[]>
  /** The execution, output typed. NOT_FOUND for an unknown id. */
  get(executionId: string, options?: { asOf?: Date }): RatchetPromise<ExecutionOf<TOutput>>
  /**
   * Resolves once the execution is terminal (check `status`); see `executions.wait`. Rejects
   * with `WaitTimeoutError` after `timeoutMs`, NOT_FOUND for an unknown id.
   */
  wait(executionId: string, options?: WaitOptions): RatchetPromise<ExecutionOf<TOutput>, WaitTimeoutError>
  /**
   * Streams its status changes until it finishes; see `executions.watch`. The iterator throws
   * a `ClientError` (NOT_FOUND for an unknown id).
   */
  watch(executionId: string, options?: WatchOptions): AsyncGenerator<WatchEventOf<TOutput>, void, undefined>
  /** Cancels it and its subtree; CONFLICT if it already completed, failed or timed out. */
  cancel(executionId: string): RatchetPromise<ExecutionOf<TOutput>>
  /**
   * Enqueue and wait, as one call: resolves with the output, or rejects with
   * `ExecutionFailedError` (the execution failed, timed out or was cancelled; its final state
   * is on the error), `WaitTimeoutError`, or any enqueue error.
   */
  run(
    input: TInput,
    options?: EnqueueOptions & WaitOptions,
  ): RatchetPromise<TOutput, ExecutionFailedError | WaitTimeoutError>
}

export interface WaitOptions {
  /** Give up after this long and reject with `WaitTimeoutError`. @default no limit */
  timeoutMs?: number
  /**
   * Aborts the wait: it rejects with the signal's reason at once (while connecting, streaming
   * or between reconnects), and the request in flight is closed.
   */
  signal?: AbortSignal
}

export interface WatchOptions {
  /**
   * Ends the stream: the iterator throws the signal's reason at once (while connecting,
   * streaming or between reconnects), and the request in flight is closed.
   */
  signal?: AbortSignal
  /**
   * How long to keep reconnecting after the connection drops (a server restart, a deploy)
   * before giving up with the last error. Each reconnect resumes after the last event seen.
   * @default 30_000
   */
  reconnectForMs?: number
}

export interface PageOptions {
  /** The `nextCursor` of the previous page. */
  cursor?: string
  limit?: number
}

export interface HistoryOptions extends PageOptions {
  /** Only status transitions. */
  statusOnly?: boolean
}

export interface ChangesOptions extends WatchOptions {
  /** Only executions of this task (id or key). */
  taskId?: string
  /** Only this execution and everything below it. */
  rootId?: string
  /** Resume after this event (its `cursor`); default: from now. */
  lastEventId?: string
}

/**
 * A Ratchet client. Every promise is a `RatchetPromise`: it rejects with a `ContractError`
 * (narrow it with `isDefinedError`, or use `safe()`), the client's own errors named on the
 * method, or another `Error` (network, 5xx, an aborted signal's reason).
 */
export interface RatchetClient<TTasks, TEvents = unknown> {
  /** One typed handle per task key of the server's tasks object. */
  tasks: { [K in TaskKeys<TTasks>]: TaskHandle<TaskInput<TTasks[K]>, TaskOutput<TTasks[K]>> }
  executions: {
    /** Untyped enqueue by task id or key. */
    enqueue(taskId: string, input: unknown, options?: EnqueueOptions): RatchetPromise<Enqueued>
    /**
     * Up to 1000 enqueues of any tasks in one request and one transaction, all or nothing
     * (INVALID_INPUT, UNKNOWN_TASK or PAYLOAD_TOO_LARGE naming `items.<index>`). Results in order.
     */
    enqueueMany(items: readonly EnqueueItem[]): RatchetPromise<EnqueuedSummary[]>
    /** The execution now, or as it was at `asOf`. */
    get(id: string, options?: { asOf?: Date }): RatchetPromise<Execution>
    /**
     * Summaries of executions, newest first: every field but `input` and `output`, the error
     * reduced to name, message and code (`get` has the rest). Pass `nextCursor` as `cursor`
     * for the next page. INVALID_INPUT (naming the field) for a bad limit, cursor or date.
     */
    list(query?: ListInput): RatchetPromise<{ items: ExecutionSummary[]; nextCursor: string | null }>
    /** Cancels the execution; CONFLICT if it already completed, failed or timed out. */
    cancel(id: string): RatchetPromise<Execution>
    /**
     * A page of the execution's history (status changes; steps, waits, signals and children
     * too unless `statusOnly`), oldest first, `limit` (default 100, at most 1000) per page.
     * Pass `nextCursor` as `cursor` for the next page; it is null when nothing follows yet.
     * NOT_FOUND for an unknown id.
     */
    history(id: string, options?: HistoryOptions): RatchetPromise<HistoryPage>
    /**
     * A page of the execution's durable record (steps, sleeps, waits, children) by position,
     * `limit` (default 100, at most 500) per page. NOT_FOUND for an unknown id.
     */
    steps(id: string, options?: PageOptions): RatchetPromise<StepsPage>
    /**
     * Cancels up to 100 executions, each on its own: a result per id, in order, `ok: false`
     * with NOT_FOUND or CONFLICT for those that could not be. INVALID_INPUT for 0 or > 100 ids.
     */
    cancelMany(ids: readonly string[]): RatchetPromise<BulkResult[]>
    /** Retries up to 100 failed, timed-out or cancelled executions, each on its own; as `cancelMany`. */
    retryMany(ids: readonly string[]): RatchetPromise<BulkResult[]>
    /**
     * Streams every status change of every execution (of one task with `taskId`, of one tree
     * with `rootId`), in order, from now, or after `lastEventId` (an event's `cursor`). Never ends
     * by itself: break out of the loop or abort `signal`. Reconnects by itself like `watch`,
     * resuming after the last event delivered (a reconnect before the first event starts from
     * that moment).
     */
    changes(options?: ChangesOptions): AsyncGenerator<ChangeEvent, void, undefined>
    /**
     * Sends a signal to an execution; it waits in the execution's inbox until a
     * `ctx.waitForSignal(name)` takes it. CONFLICT if the execution already finished.
     */
    signal(id: string, name: string, payload?: unknown): RatchetPromise<Execution>
    /**
     * Completes the wait registered under `key` (`ctx.waitForWakeup`) with an output or an
     * error. NOT_FOUND for an unknown key, CONFLICT when it was already woken or has ended.
     */
    wakeup(
      key: string,
      result: { output: unknown } | { error: { message: string; code?: string } },
    ): ClientPromiseResult<{ executionId: string }, WakeupError>
    /**
     * Resolves with the execution once it is completed, failed, cancelled or timed out; check
     * `status`. Built on `watch`: one streaming request, resumed across dropped connections.
     * Rejects with `WaitTimeoutError` after `timeoutMs`, or the signal's reason when aborted.
     */
    wait(id: string, options?: WaitOptions): RatchetPromise<Execution, WaitTimeoutError>
    /**
     * Streams the execution's status changes (server-sent events) in order, from its first,
     * ending after its final one (an execution retried after it ended goes on). Reconnects by itself when the connection drops and resumes after the last
     * event it delivered, so none is skipped or repeated. Breaking out of the loop, or
     * aborting `signal`, ends the request and the server's side of it. The iterator throws a
     * `ClientError`: NOT_FOUND for an unknown id (contract errors are not retried), or the
     * last error once reconnecting has failed for `reconnectForMs`.
     *
     * ```ts
     * for await (const event of ratchet.executions.watch(id)) console.log(event.status)
     * ```
     */
    watch(id: string, options?: WatchOptions): AsyncGenerator<WatchEvent, void, undefined>
    /**
     * Runs a failed, timed-out or cancelled execution again, with fresh failure and recovery
     * budgets (its next run is attempt 1 again; `runs` keeps counting); steps it recorded as
     * done are not run again. CONFLICT otherwise.
     */
    retry(id: string): RatchetPromise<Execution>
  }
  events: {
    /**
     * Publishes an event (typed by the server's events schema): it is recorded and starts every
     * task declared with `on: <its type>`; none listening is fine. INVALID_INPUT (with issues,
     * nothing stored) when the event or a listening task's input schema rejects it. With `id`,
     * publishing it again starts nothing new.
     */
    publish(event: EventOf<TEvents>, options?: { id?: string }): RatchetPromise<PublishResult>
    /** Recorded events, newest first. */
    list(query?: { type?: string; cursor?: string; limit?: number }): RatchetPromise<{
      items: RecordedEvent[]
      nextCursor: string | null
    }>
  }
  listTasks(): RatchetPromise<TaskInfo[]>
  /**
   * Makes the server fetch the manifests of the apps whose functions it runs again, and
   * register what they offer now (new functions, changed schemas and options): what changed,
   * per app. TASK_SOURCE_UNAVAILABLE (502, nothing changed) when an app cannot be reached or
   * answers no valid manifest. With several replicas, only the one that answers refreshes.
   */
  refreshTasks(): RatchetPromise<TaskRefresh>
  /**
   * Pauses a task's queue (by id or key) on every replica: enqueues are accepted and running
   * attempts finish, but nothing more of it starts until `resumeTask`. UNKNOWN_TASK otherwise.
   */
  pauseTask(taskId: string): RatchetPromise<TaskQueue>
  /** Resumes a paused task's queue: its due executions start at once. UNKNOWN_TASK otherwise. */
  resumeTask(taskId: string): RatchetPromise<TaskQueue>
  /**
   * Per task (registered, or with executions stored): executions by status, queued ones due
   * now (`queueDepth`) and the earliest due time among them (`oldestQueuedAt`).
   */
  taskStats(): RatchetPromise<TaskStats[]>
  /**
   * Executions ended (by outcome, at `finishedAt`) and first started per time bucket of
   * `[from, to)`, `buckets` (default 60, at most 500) buckets. INVALID_INPUT when `to` is not
   * after `from`.
   */
  throughput(query: ThroughputInput): RatchetPromise<Throughput>
  /** The raw oRPC client of the contract, for everything else. */
  rpc: ContractRouterClient<Contract>
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timed_out'])

/**
 * A typed client of a Ratchet server. Runs in any runtime with `fetch` (Node 18+, Deno, Bun,
 * browsers, edge functions): it imports nothing Node-specific.
 *
 * ```ts
 * import type { tasks } from '../ratchet/tasks'
 * const ratchet = createClient<typeof tasks>({ url, apiKey })
 * const { executionId } = await ratchet.tasks.sendWelcomeEmail.enqueue({ userId, email })
 * const done = await ratchet.executions.wait(executionId)
 * ```
 */
export function createClient<TTasks = Record<string, never>, TEvents = unknown>(
  options: ClientOptions,
): RatchetClient<TTasks, TEvents> {
  const base = options.url.replace(/\/+$/, '')
  const headers: Record<string, string> = { ...options.headers }
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`
  const customFetch = options.fetch
  const link = new RPCLink<ClientRetryPluginContext>({
    url: `${base}/rpc`,
    headers,
    ...(customFetch ? { fetch: (request: Request, init: RequestInit) => customFetch(request, init) } : {}),
    // Retries nothing unless a call asks (watch does, with its ReconnectPolicy).
    plugins: [new ClientRetryPlugin()],
  })
  const rpc: ContractRouterClient<Contract, ClientRetryPluginContext> = createORPCClient(link)

  const enqueue = async (
    taskId: string,
    input: unknown,
    enqueueOptions?: EnqueueOptions,
  ): Promise<Enqueued> => {
    const result = await rpc.executions.enqueue({
      taskId,
      input,
      ...(enqueueOptions ? { options: enqueueOptions } : {}),
    })
    return { executionId: result.execution.id, execution: result.execution, created: result.created }
  }

  const enqueueMany = async (items: readonly EnqueueItem[]): Promise<EnqueuedSummary[]> => {
    const { results } = await rpc.executions.enqueueMany({ items: [...items] })
    return results.map(({ execution, created }) => ({ executionId: execution.id, execution, created }))
  }

  /**
   * Reconnecting is oRPC's `ClientRetryPlugin` (it resumes the event stream with the last event
   * id seen) under our ReconnectPolicy. This loop adds what the plugin does not do:
   * - an abort ends the watch at once, whatever the request in flight does (see untilAborted);
   * - a stream that ends cleanly before the final change (a proxy that cuts long responses) is
   *   resumed too, under the same policy: the plugin only retries errors.
   */
  async function* watch(
    id: string,
    watchOptions: WatchOptions = {},
  ): AsyncGenerator<WatchEvent, void, undefined> {
    const { signal } = watchOptions
    signal?.throwIfAborted()
    const policy = new ReconnectPolicy(watchOptions.reconnectForMs ?? 30_000, signal)
    let lastEventId: string | undefined
    let lastStatus: string | undefined
    for (;;) {
      const events = await untilAborted(
        rpc.executions.watch({ id }, { ...(signal ? { signal } : {}), lastEventId, context: policy.context }),
        signal,
        // connected after the abort: close the stream nobody will read
        (late) => void late.return().catch(() => {}),
      )
      policy.opened()
      try {
        for (;;) {
          const next = await untilAborted(events.next(), signal)
          if (next.done) break
          const event = next.value
          policy.delivered()
          lastEventId = getEventMeta(event)?.id ?? String(event.seq)
          lastStatus = event.status
          yield event
        }
      } finally {
        // Ends the request (by cancelling its body) after an abort, a break or an error, whether
        // or not the signal reached it.
        void events.return().catch(() => {})
      }
      // The server ends the stream after the final change (and with a 503, which the plugin
      // retries, when it shuts down). A stream that ended before it was cut on the way: resume.
      if (lastStatus !== undefined && TERMINAL.has(lastStatus)) return
      const ended = new Error(`the watch of execution ${id} ended before the execution finished`)
      if (!policy.shouldRetry(ended)) throw ended
      await policy.backOff()
    }
  }

  /** As `watch`, for the change feed: it has no final event, so every clean end is resumed. */
  async function* changes(changesOptions: ChangesOptions = {}): AsyncGenerator<ChangeEvent, void, undefined> {
    const { signal, taskId, rootId } = changesOptions
    signal?.throwIfAborted()
    const policy = new ReconnectPolicy(changesOptions.reconnectForMs ?? 30_000, signal)
    let lastEventId = changesOptions.lastEventId
    const input = { ...(taskId !== undefined ? { taskId } : {}), ...(rootId !== undefined ? { rootId } : {}) }
    for (;;) {
      const events = await untilAborted(
        rpc.executions.changes(input, {
          ...(signal ? { signal } : {}),
          lastEventId,
          context: policy.context,
        }),
        signal,
        (late) => void late.return().catch(() => {}),
      )
      policy.opened()
      try {
        for (;;) {
          const next = await untilAborted(events.next(), signal)
          if (next.done) break
          const event = next.value
          policy.delivered()
          lastEventId = getEventMeta(event)?.id ?? event.cursor
          yield event
        }
      } finally {
        void events.return().catch(() => {})
      }
      const ended = new Error('the change stream ended')
      if (!policy.shouldRetry(ended)) throw ended
      await policy.backOff()
    }
  }

  const wait = async (id: string, waitOptions: WaitOptions = {}): Promise<Execution> => {
    const { timeoutMs, signal } = waitOptions
    signal?.throwIfAborted()
    const controller = new AbortController()
    const onAbort = () => controller.abort(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    let timedOut = false
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            controller.abort()
          }, timeoutMs)
    let last: Execution | undefined
    try {
      // The watch ends after the final change; each event carries the execution as then.
      for await (const event of watch(id, { signal: controller.signal })) last = event.execution
      return last && TERMINAL.has(last.status)
        ? last
        : await untilAborted(rpc.executions.get({ id }, { signal: controller.signal }), controller.signal)
    } catch (error) {
      if (timedOut) {
        throw new WaitTimeoutError(
          `execution ${id} did not finish within ${timeoutMs} ms (last status: ${last?.status ?? 'unknown'})`,
          { executionId: id, execution: last, timeoutMs: timeoutMs ?? 0 },
        )
      }
      throw error
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  const run = async (taskId: string, input: unknown, options: EnqueueOptions & WaitOptions = {}) => {
    const { timeoutMs, signal, ...enqueueOptions } = options
    const { executionId } = await enqueue(taskId, input, enqueueOptions)
    const execution = await wait(executionId, {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(signal ? { signal } : {}),
    })
    if (execution.status !== 'completed') throw new ExecutionFailedError(execution)
    return execution.output
  }

  const get = (id: string, getOptions?: { asOf?: Date }) =>
    rpc.executions.get({ id, ...(getOptions?.asOf ? { asOf: getOptions.asOf } : {}) })

  const tasks = new Proxy({} as RatchetClient<TTasks, TEvents>['tasks'], {
    get(_target, key) {
      if (typeof key !== 'string') return undefined
      return {
        enqueue: (input: unknown, enqueueOptions?: EnqueueOptions) => enqueue(key, input, enqueueOptions),
        enqueueMany: (items: readonly { input: unknown; options?: EnqueueOptions }[]) =>
          enqueueMany(items.map((item) => ({ ...item, taskId: key }))),
        get,
        wait,
        watch,
        cancel: (id: string) => rpc.executions.cancel({ id }),
        run: (input: unknown, options?: EnqueueOptions & WaitOptions) => run(key, input, options),
      }
    },
  })

  return {
    tasks,
    executions: {
      enqueue,
      enqueueMany,
      get,
      list: (query = {}) => rpc.executions.list(query),
      cancel: (id) => rpc.executions.cancel({ id }),
      history: (id, historyOptions = {}) => rpc.executions.history({ id, ...historyOptions }),
      steps: (id, pageOptions = {}) => rpc.executions.steps({ id, ...pageOptions }),
      cancelMany: async (ids) => (await rpc.executions.cancelMany({ ids: [...ids] })).results,
      retryMany: async (ids) => (await rpc.executions.retryMany({ ids: [...ids] })).results,
      changes,
      signal: (id, name, payload) => rpc.executions.signal({ id, name, payload: payload ?? null }),
      wakeup: (key, result) => rpc.executions.wakeup({ key, ...result }),
      wait,
      watch,
      retry: (id) => rpc.executions.retry({ id }),
    },
    events: {
      publish: (event, publishOptions) =>
        rpc.events.publish({ event, ...(publishOptions?.id !== undefined ? { id: publishOptions.id } : {}) }),
      list: (query = {}) => rpc.events.list(query),
    },
    listTasks: async () => (await rpc.tasks.list()).tasks,
    refreshTasks: () => rpc.tasks.refresh(),
    pauseTask: (taskId) => rpc.tasks.pause({ taskId }),
    resumeTask: (taskId) => rpc.tasks.resume({ taskId }),
    taskStats: async () => (await rpc.stats.tasks()).tasks,
    throughput: (query) => rpc.stats.throughput(query),
    rpc,
  }
}
