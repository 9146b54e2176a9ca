import { RetryableError } from '@ratchet/core'
import { parseRetryAfter } from '../app-client'
import { mapCallError } from '../error-mapping'
import { signedHeaders, type CallMeta } from '../signing'
import type { Invoke } from './driver'
import {
  MANIFEST_PROCEDURE,
  ProtocolError,
  functionProcedure,
  parseManifest,
  readAnswer,
  type InvokeResult,
  type Manifest,
} from './protocol'

/** The HTTP side of app-hosted functions on the server: the manifest and the invocations. */
export type AppFetch = (request: Request) => Promise<Response>

export interface ManifestFetchOptions {
  /** How long one manifest request may take. */
  timeoutMs: number
  /** How long to keep trying while the app cannot be reached. */
  retryForMs: number
  /** Told of each failed try that will be retried. @default none (with `retryForMs: 0`, none is) */
  onRetry?: (error: Error, tries: number) => void
}

/**
 * The app's manifest. While the app cannot be reached or answers 5xx (it may be starting
 * beside the server), tries again after 0.5, 1, 2, then every 4 s, for `retryForMs`; an answer
 * that retrying cannot fix (a 4xx: a wrong secret or URL; a manifest that is not one) rejects
 * at once. Rejects naming the URL and what went wrong.
 */
export async function fetchManifest(
  url: string,
  secret: string,
  doFetch: AppFetch,
  options: ManifestFetchOptions,
): Promise<Manifest> {
  const meta: CallMeta = { executionId: '-', attempt: 0, idempotencyKey: '-', procedure: MANIFEST_PROCEDURE }
  const giveUpAt = Date.now() + options.retryForMs
  for (let tries = 1; ; tries++) {
    let retryable: Error
    try {
      const response = await doFetch(
        await signedPost(url, secret, meta, '', AbortSignal.timeout(options.timeoutMs)),
      )
      if (response.ok) return parseManifest(await response.json(), url)
      const problem = new Error(
        `appFunctions: ${url} answered ${response.status} to the manifest request: ${(await response.text()).slice(0, 500)}`,
      )
      if (response.status < 500) throw problem
      retryable = problem
    } catch (error) {
      if (!(error instanceof TypeError) && !(error instanceof DOMException)) throw error
      // fetch's TypeError (refused, reset, DNS) or the request's timeout.
      retryable = new Error(`appFunctions: cannot reach ${url}: ${error.message}`, { cause: error })
    }
    const delayMs = Math.min(4_000, 500 * 2 ** (tries - 1))
    if (Date.now() + delayMs > giveUpAt) throw retryable
    options.onRetry?.(retryable, tries)
    await new Promise((resolve) => setTimeout(resolve, delayMs))
  }
}

/** Sends invocations to the app's route (see `Invoke`). */
export function invoker(url: string, secret: string, doFetch: AppFetch): Invoke {
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
