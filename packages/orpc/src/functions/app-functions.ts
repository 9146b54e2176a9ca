import { MAX_TIMEOUT_MS, RetryableError, task, type AnyTask } from '@ratchet/core'
import { parseRetryAfter } from '../app-client'
import { mapCallError } from '../error-mapping'
import { checkSecret, signedHeaders, type CallMeta } from '../signing'
import { driveAppFunction, type Invoke } from './driver'
import { jsonSchemaValidator } from './json-schema'
import {
  MANIFEST_PROCEDURE,
  ProtocolError,
  functionProcedure,
  parseManifest,
  readAnswer,
  type InvokeResult,
  type Manifest,
} from './protocol'

export interface AppFunctionsOptions {
  /** The app's functions route, e.g. `https://shop.example.com/api/ratchet`. */
  url: string
  /** The secret shared with the app (at least 32 characters). */
  secret: string
  /** A fetch implementation (tests, proxies). @default globalThis.fetch */
  fetch?: (request: Request) => Promise<Response>
  /** How long the manifest request may take. @default 10_000 */
  manifestTimeoutMs?: number
}

/**
 * The durable functions a web app hosts, as tasks for the server's tasks module:
 *
 * ```ts
 * export const tasks = { ...localTasks, ...(await appFunctions({ url: process.env.SHOP_URL!, secret })) }
 * ```
 *
 * Fetches the app's signed manifest once (the ids, modes, options and JSON Schemas of its
 * functions); each function becomes a task keyed by its id, whose input Ratchet checks at
 * enqueue against the function's JSON Schema and whose runs invoke the app over signed HTTP.
 * Rejects when the app cannot be reached or answers no valid manifest, naming the URL.
 */
export async function appFunctions(options: AppFunctionsOptions): Promise<Record<string, AnyTask>> {
  const secret = checkSecret(options.secret, 'appFunctions')
  const doFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request))
  const manifest = await fetchManifest(options.url, secret, doFetch, options.manifestTimeoutMs ?? 10_000)
  const invoke = invoker(options.url, secret, doFetch)
  const tasks: Record<string, AnyTask> = {}
  for (const fn of manifest.functions) {
    const { id, description, retry, maxRecoveries, priority, deadlineMs } = fn
    tasks[id] = task({
      id,
      input: jsonSchemaValidator(fn.input, `input of ${id}`),
      description,
      // A run drives many invocations; each has its own limit (the function's timeoutMs).
      timeoutMs: MAX_TIMEOUT_MS,
      retry,
      maxRecoveries,
      priority,
      deadlineMs,
      run: driveAppFunction(fn, invoke),
    })
  }
  return tasks
}

async function fetchManifest(
  url: string,
  secret: string,
  doFetch: (request: Request) => Promise<Response>,
  timeoutMs: number,
): Promise<Manifest> {
  const meta: CallMeta = { executionId: '-', attempt: 0, idempotencyKey: '-', procedure: MANIFEST_PROCEDURE }
  let response: Response
  try {
    response = await doFetch(await signedPost(url, secret, meta, '', AbortSignal.timeout(timeoutMs)))
  } catch (error) {
    throw new Error(`appFunctions: cannot reach ${url}: ${(error as Error).message}`, { cause: error })
  }
  if (!response.ok)
    throw new Error(
      `appFunctions: ${url} answered ${response.status} to the manifest request: ${await response.text()}`,
    )
  return parseManifest(await response.json(), url)
}

function invoker(url: string, secret: string, doFetch: (request: Request) => Promise<Response>): Invoke {
  return async (body, signal, timeoutMs, onOp): Promise<InvokeResult> => {
    const meta: CallMeta = {
      executionId: body.executionId,
      attempt: body.attempt,
      idempotencyKey: `ratchet:${body.executionId}`,
      procedure: functionProcedure(body.function),
    }
    const json = JSON.stringify(body)
    let response: Response
    const failed = (error: unknown) =>
      !signal.aborted && (error as Error).name === 'TimeoutError'
        ? new RetryableError(`function ${body.function}: the invocation took longer than ${timeoutMs} ms`, {
            code: 'INVOCATION_TIMEOUT',
            cause: error,
          })
        : mapCallError(error, undefined, signal, `function ${body.function}`)
    try {
      response = await doFetch(
        await signedPost(url, secret, meta, json, AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])),
      )
    } catch (error) {
      throw failed(error)
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '')
      throw mapCallError(
        new Error(text.slice(0, 500) || response.statusText),
        {
          status: response.status,
          retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), Date.now()),
        },
        signal,
        `function ${body.function}`,
      )
    }
    if (!response.body)
      throw new RetryableError(`function ${body.function}: the app answered no body`, {
        code: 'BAD_APP_ANSWER',
      })
    try {
      return await readAnswer(response.body, body.function, onOp)
    } catch (error) {
      // A deploy in progress can answer from a half-ready instance: retried like a 5xx.
      if (error instanceof ProtocolError)
        throw new RetryableError(error.message, { code: 'BAD_APP_ANSWER', cause: error })
      // Cut off mid-answer: the ops before the cut are recorded; the rest is retried.
      throw failed(error)
    }
  }
}

/** A signed POST of `body` (JSON, or empty) to the app's route. Redirects are not followed. */
async function signedPost(
  url: string,
  secret: string,
  meta: CallMeta,
  body: string,
  signal: AbortSignal,
): Promise<Request> {
  return new Request(url, {
    method: 'POST',
    headers: {
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(await signedHeaders(secret, meta, body, Date.now())),
    },
    ...(body ? { body } : {}),
    redirect: 'manual',
    signal,
  })
}
