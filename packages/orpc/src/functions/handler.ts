import { ValidationError, describeIssues, serializeError, validateSchema } from '@ratchet/core'
import { RatchetSignatureError, verifySignedCall } from '../app/verify'
import { HEADERS } from '../signing'
import { Invocation } from './app-context'
import type { AnyAppFunction } from './define'
import {
  EXECUTION_MODES,
  MANIFEST_PROCEDURE,
  PROTOCOL_VERSION,
  functionIdOf,
  ANSWER_CONTENT_TYPE,
  type AnswerLine,
  type InvokeRequest,
  type Manifest,
} from './protocol'

export interface FunctionsHandlerOptions {
  /** The secret shared with Ratchet (the server's app entry); several during a rotation. */
  secret: string | readonly string[]
  /** Signed calls older (or further ahead) than this are refused as replays. @default 60_000 */
  toleranceMs?: number
}

/**
 * The one route a web app mounts for its durable functions: a `Request → Response` handler
 * (a Next.js route handler, Hono, an edge function, or `serveFetch` on `node:http`). Every call
 * must be signed by Ratchet, or it is answered 401 and nothing runs. It answers the manifest
 * (`$manifest`) and invocations (`function:<id>`); an unknown function is a 404, a malformed
 * body a 400. A call replayed to the same instance within `toleranceMs` is refused (409).
 * Throws `TypeError` when two functions share an id.
 */
export function createFunctionsHandler(
  functions: readonly AnyAppFunction[] | Readonly<Record<string, AnyAppFunction>>,
  options: FunctionsHandlerOptions,
): (request: Request) => Promise<Response> {
  const byId = new Map<string, AnyAppFunction>()
  const list: readonly AnyAppFunction[] = Array.isArray(functions)
    ? (functions as readonly AnyAppFunction[])
    : Object.values(functions as Readonly<Record<string, AnyAppFunction>>)
  for (const fn of list) {
    if (byId.has(fn.id)) throw new TypeError(`createFunctionsHandler: two functions use the id "${fn.id}"`)
    byId.set(fn.id, fn)
  }
  const manifest: Manifest = { v: PROTOCOL_VERSION, functions: [...byId.values()].map((fn) => fn.manifest) }
  const toleranceMs = options.toleranceMs ?? 60_000
  const seen = new RecentSignatures(toleranceMs)
  return async (request) => {
    if (request.method !== 'POST')
      return problem(405, 'METHOD_NOT_ALLOWED', 'Ratchet calls this route with POST')
    let info
    let text = ''
    try {
      // The body is read once: verified as text, then parsed from the same text.
      info = await verifySignedCall(request, { secret: options.secret, toleranceMs }, async () => {
        text = await request.text()
        return text
      })
    } catch (error) {
      if (!(error instanceof RatchetSignatureError)) throw error
      return problem(401, 'UNAUTHORIZED', error.message, { reason: error.code })
    }
    if (!seen.add(request.headers.get(HEADERS.signature) ?? '', info.timestamp))
      return problem(409, 'REPLAYED', 'this signed call was already received')
    if (info.procedure === MANIFEST_PROCEDURE) return Response.json(manifest)
    const id = functionIdOf(info.procedure)
    const fn = id === undefined ? undefined : byId.get(id)
    if (!fn)
      return problem(404, 'UNKNOWN_FUNCTION', `no function ${JSON.stringify(id ?? info.procedure)} here`)
    let body: InvokeRequest
    try {
      body = JSON.parse(text) as InvokeRequest
    } catch {
      return problem(400, 'BAD_REQUEST', 'the body is not JSON')
    }
    const bad = checkInvokeRequest(body, fn.id, info)
    if (bad) return problem(400, 'BAD_REQUEST', bad)
    return answer(fn, body, request.signal)
  }
}

/**
 * Runs one invocation and streams its answer (see protocol.ts): each new op as a line as soon
 * as it is decided, then the result. Input and output mismatches are a failed result.
 */
function answer(fn: AnyAppFunction, body: InvokeRequest, signal: AbortSignal): Response {
  const encoder = new TextEncoder()
  // Ratchet went away (a cancel, a timeout): the invocation ends by its aborted signal.
  let reading = true
  const stream = new ReadableStream<Uint8Array>({
    cancel() {
      reading = false
    },
    async start(controller) {
      const send = (line: AnswerLine) => {
        if (reading) controller.enqueue(encoder.encode(`${JSON.stringify(line)}\n`))
      }
      send({ v: PROTOCOL_VERSION })
      const input = await validateSchema(fn.inputSchema, body.input)
      if (!input.ok) {
        const error = new ValidationError(`input of ${fn.id}: ${describeIssues(input.issues)}`, input.issues)
        send({ result: { status: 'failed', error: serializeError(error) } })
        if (reading) controller.close()
        return
      }
      const invocation = new Invocation({
        executionId: body.executionId,
        attempt: body.attempt,
        record: body.record,
        mode: body.mode,
        budgetMs: body.budgetMs,
        signal,
        onOp: (op) => send({ op }),
      })
      const result = await invocation.run(async (ctx) => {
        const output: unknown = await fn.run(input.value, ctx)
        if (!fn.outputSchema) return output
        const checked = await validateSchema(fn.outputSchema, output)
        const value: unknown = checked.ok ? checked.value : undefined
        if (checked.ok) return value
        throw new ValidationError(
          `output of ${fn.id}: ${describeIssues(checked.issues)}`,
          checked.issues,
          'INVALID_OUTPUT',
        )
      })
      send({ result })
      if (reading) controller.close()
    },
  })
  return new Response(stream, { headers: { 'content-type': ANSWER_CONTENT_TYPE } })
}

function checkInvokeRequest(
  body: Partial<Record<keyof InvokeRequest, unknown>>,
  id: string,
  info: { executionId: string; attempt: number },
): string | undefined {
  if (typeof body !== 'object' || body === null) return 'the body is not an object'
  if (body.v !== PROTOCOL_VERSION) return `protocol version ${String(body.v)} is not ${PROTOCOL_VERSION}`
  if (body.function !== id)
    return `the body is for function ${JSON.stringify(body.function)}, the signature for ${id}`
  if (body.executionId !== info.executionId || body.attempt !== info.attempt)
    return 'the body and the signed headers name different executions'
  if (!Array.isArray(body.record)) return 'record must be an array'
  if (!(EXECUTION_MODES as readonly unknown[]).includes(body.mode))
    return `mode must be ${EXECUTION_MODES.join(' or ')}`
  if (typeof body.budgetMs !== 'number' || !(body.budgetMs > 0)) return 'budgetMs must be a positive number'
  return undefined
}

function problem(
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): Response {
  return Response.json({ code, message, ...extra }, { status })
}

/**
 * Signatures received within the tolerance window, so a captured call replayed to the same
 * instance is refused. Best effort: a serverless platform may route a replay to another
 * instance, which the timestamp tolerance bounds, and Ratchet fences any stale answer.
 */
class RecentSignatures {
  private readonly seen = new Map<string, number>()
  constructor(private readonly windowMs: number) {}

  /** False when `signature` was already seen. */
  add(signature: string, timestamp: number): boolean {
    // Oldest first (insertion order, calls signed moments before they arrive): drop the expired.
    const now = Date.now()
    for (const [key, at] of this.seen) {
      if (now - at <= this.windowMs) break
      this.seen.delete(key)
    }
    if (this.seen.has(signature)) return false
    this.seen.set(signature, timestamp)
    return true
  }
}
