import { createORPCClient } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import type { ContractRouterClient } from '@orpc/contract'
import type {
  Contract,
  EnqueueOptions,
  Execution,
  HistoryEvent,
  ListInput,
  TaskInfo,
} from '@ratchet/contract'
import { WaitTimeoutError } from './errors'
import type { TaskInput, TaskKeys, TaskOutput } from './task-types'

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

/** An enqueued execution. `created` is false when the idempotency key matched an existing one. */
export interface Enqueued<TOutput = unknown> {
  executionId: string
  execution: Execution
  created: boolean
  /** Phantom: the task's output type, for typed helpers. Never set. */
  readonly '~output'?: TOutput
}

export interface TaskHandle<TInput, TOutput> {
  /**
   * Validates `input` on the server against the task's schema and enqueues an execution.
   * Rejects with a typed error: INVALID_INPUT (with issues), UNKNOWN_TASK, CONFLICT
   * (idempotency key reused with other input), PAYLOAD_TOO_LARGE, UNAUTHORIZED.
   */
  enqueue(input: TInput, options?: EnqueueOptions): Promise<Enqueued<TOutput>>
}

export interface WaitOptions {
  /** Give up after this long and reject with `WaitTimeoutError`. @default no limit */
  timeoutMs?: number
  /** Aborts the wait (and the request in flight); rejects with the signal's reason. */
  signal?: AbortSignal
}

export interface RatchetClient<TTasks> {
  /** One typed handle per task key of the server's tasks object. */
  tasks: { [K in TaskKeys<TTasks>]: TaskHandle<TaskInput<TTasks[K]>, TaskOutput<TTasks[K]>> }
  executions: {
    /** Untyped enqueue by task id or key. */
    enqueue(taskId: string, input: unknown, options?: EnqueueOptions): Promise<Enqueued>
    /** The execution now, or as it was at `asOf`. */
    get(id: string, options?: { asOf?: Date }): Promise<Execution>
    list(query?: ListInput): Promise<{ items: Execution[]; nextCursor: string | null }>
    /** Cancels the execution; CONFLICT if it already completed, failed or timed out. */
    cancel(id: string): Promise<Execution>
    history(id: string): Promise<HistoryEvent[]>
    /**
     * Sends a signal to an execution; it waits in the execution's inbox until a
     * `ctx.waitForSignal(name)` takes it. CONFLICT if the execution already finished.
     */
    signal(id: string, name: string, payload?: unknown): Promise<Execution>
    /**
     * Completes the wait registered under `key` (`ctx.waitForWakeup`) with an output or an
     * error. NOT_FOUND for an unknown key, CONFLICT when it was already woken or has ended.
     */
    wakeup(
      key: string,
      result: { output: unknown } | { error: { message: string; code?: string } },
    ): Promise<{ executionId: string }>
    /**
     * Resolves with the execution once it is completed, failed, cancelled or timed out; check
     * `status`. Holds one request open at a time on the server (long poll), never a polling loop.
     */
    wait(id: string, options?: WaitOptions): Promise<Execution>
  }
  listTasks(): Promise<TaskInfo[]>
  /** The raw oRPC client of the contract, for everything else. */
  rpc: ContractRouterClient<Contract>
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timed_out'])
/** Per-request hold of a wait; below typical serverless and proxy timeouts. */
const WAIT_SLICE_MS = 25_000

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
export function createClient<TTasks = Record<string, never>>(options: ClientOptions): RatchetClient<TTasks> {
  const base = options.url.replace(/\/+$/, '')
  const headers: Record<string, string> = { ...options.headers }
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`
  const customFetch = options.fetch
  const link = new RPCLink({
    url: `${base}/rpc`,
    headers,
    ...(customFetch ? { fetch: (request: Request, init: RequestInit) => customFetch(request, init) } : {}),
  })
  const rpc: ContractRouterClient<Contract> = createORPCClient(link)

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

  const wait = async (id: string, waitOptions: WaitOptions = {}): Promise<Execution> => {
    const { timeoutMs, signal } = waitOptions
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs
    let last: Execution | undefined
    for (;;) {
      signal?.throwIfAborted()
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new WaitTimeoutError(id, last, timeoutMs ?? 0)
      last = await rpc.executions.wait(
        { id, timeoutMs: Math.min(remaining, WAIT_SLICE_MS) },
        signal ? { signal } : {},
      )
      if (TERMINAL.has(last.status)) return last
    }
  }

  const tasks = new Proxy({} as RatchetClient<TTasks>['tasks'], {
    get(_target, key) {
      if (typeof key !== 'string') return undefined
      return {
        enqueue: (input: unknown, enqueueOptions?: EnqueueOptions) => enqueue(key, input, enqueueOptions),
      }
    },
  })

  return {
    tasks,
    executions: {
      enqueue,
      get: (id, options) => rpc.executions.get({ id, ...(options?.asOf ? { asOf: options.asOf } : {}) }),
      list: (query = {}) => rpc.executions.list(query),
      cancel: (id) => rpc.executions.cancel({ id }),
      history: async (id) => (await rpc.executions.history({ id })).items,
      signal: (id, name, payload) => rpc.executions.signal({ executionId: id, name, payload }),
      wakeup: (key, result) => rpc.executions.wakeup({ key, ...result }),
      wait,
    },
    listTasks: async () => (await rpc.tasks.list()).tasks,
    rpc,
  }
}
