/**
 * The wire protocol between Ratchet and a web app's durable functions (both sides import it).
 *
 * Every call is a signed POST to the app's functions route (see signing.ts): the signed
 * procedure is `$manifest` for the list of functions, `function:<id>` for an invocation.
 * An invocation carries the function's input and its record (every step and wait recorded so
 * far, in position order). The app replays the record and streams back what it does next, one
 * JSON line each (`application/x-ndjson`): `{"v":1}`, then every new step and wait as soon as it
 * is decided (`{"op":…}`, in position order, contiguous from the end of the record), then how
 * the invocation ended (`{"result":…}`). Ratchet records each op as its line arrives, so an
 * invocation cut off (a platform's time limit, a killed instance) loses only the step in flight,
 * not the steps it completed before. Then it waits for what the ops wait on, and invokes again.
 * State lives in Ratchet; the app keeps nothing between invocations.
 */
import type { ChildOptions, RetryPolicyInput, StepKind, StoredError } from '@ratchet/core'

export const PROTOCOL_VERSION = 1
export const MANIFEST_PROCEDURE = '$manifest'
const FUNCTION_PREFIX = 'function:'

/** The signed procedure of an invocation of function `id`. */
export function functionProcedure(id: string): string {
  return `${FUNCTION_PREFIX}${id}`
}

/** The function id of a signed procedure, or `undefined` when it names no invocation. */
export function functionIdOf(procedure: string): string | undefined {
  return procedure.startsWith(FUNCTION_PREFIX) ? procedure.slice(FUNCTION_PREFIX.length) : undefined
}

/**
 * `isolated`: each invocation replays the record and runs at most one new step.
 * `sequential`: each invocation runs new steps until `maxInvocationMs` has passed.
 */
export const EXECUTION_MODES = ['isolated', 'sequential'] as const
export type ExecutionMode = (typeof EXECUTION_MODES)[number]

/** @default 10_000: well under the common serverless limits (Vercel Hobby's 10 s is the lowest). */
export const DEFAULT_MAX_INVOCATION_MS = 10_000

export type JsonSchema = Record<string, unknown>

/** One function as the app declares it. */
export interface ManifestFunction {
  id: string
  description?: string
  mode: ExecutionMode
  /** The sequential mode's time budget per invocation. */
  maxInvocationMs: number
  input: JsonSchema
  output?: JsonSchema
  /** Task options, as `task()` takes them. */
  timeoutMs?: number
  retry?: RetryPolicyInput
  maxRecoveries?: number
  priority?: number
  deadlineMs?: number
}

export interface Manifest {
  v: typeof PROTOCOL_VERSION
  functions: ManifestFunction[]
}

/** A recorded step or wait, as the app replays it. */
export interface RecordEntry {
  name: string
  kind: StepKind
  /** `waiting`: not satisfied yet (the app's call blocks). */
  status: 'done' | 'failed' | 'waiting'
  /** A done entry's value (absent for `undefined`). */
  value?: unknown
  /** A failed entry's error. */
  error?: StoredError
}

export interface InvokeRequest {
  v: typeof PROTOCOL_VERSION
  function: string
  executionId: string
  attempt: number
  input: unknown
  record: RecordEntry[]
  mode: ExecutionMode
  /** The sequential mode's budget for this invocation, in ms. */
  budgetMs: number
}

/** A step or wait the app asked for for the first time. */
export type NewOp =
  | { kind: 'step'; name: string; status: 'done'; value?: unknown }
  /** A final error is recorded and thrown into the function; a retryable one fails the attempt. */
  | { kind: 'step'; name: string; status: 'failed'; error: StoredError }
  | { kind: 'sleep'; name: string; ms?: number; until?: number }
  | { kind: 'signal'; name: string; signal: string; timeoutMs?: number }
  | { kind: 'wakeup'; name: string; key: string; timeoutMs?: number }
  | { kind: 'child' | 'spawn'; name: string; task: string; input: unknown; options?: ChildOptions }

/**
 * How an invocation ended: the function returned or threw, it stopped at the mode's limit with
 * more to run (`yield`), or nothing can go on until a wait is satisfied (`blocked`).
 */
export type InvokeResult =
  | { status: 'completed'; output?: unknown }
  | { status: 'failed'; error: StoredError }
  | { status: 'yield' }
  | { status: 'blocked' }

/** One line of an invocation's answer. */
export type AnswerLine = { v: typeof PROTOCOL_VERSION } | { op: NewOp } | { result: InvokeResult }

export const ANSWER_CONTENT_TYPE = 'application/x-ndjson'

/** A reply that does not follow the protocol: an error in the app's wiring or version. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError'
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
const isName = (value: unknown): value is string => typeof value === 'string' && value.length > 0
const isStoredError = (value: unknown): value is StoredError =>
  isObject(value) && typeof value.name === 'string' && typeof value.message === 'string'
const optionalNumber = (value: unknown) =>
  value === undefined || (typeof value === 'number' && Number.isFinite(value))

/**
 * Reads an app's answer to an invocation, a line at a time: calls `onOp` with each new op as
 * its line arrives, and resolves with the result. Rejects with `ProtocolError` naming what is
 * wrong, or with the stream's error (an abort, a dropped connection) after the ops before it.
 */
export async function readAnswer(
  body: ReadableStream<Uint8Array>,
  functionId: string,
  onOp: (op: NewOp) => void,
): Promise<InvokeResult> {
  const fail = (what: string): never => {
    throw new ProtocolError(`function "${functionId}": the app's answer ${what}`)
  }
  let lineNumber = 0
  let result: InvokeResult | undefined
  const take = (text: string) => {
    if (text.trim() === '') return
    let line: unknown
    try {
      line = JSON.parse(text)
    } catch {
      return fail(`has a line that is not JSON: ${text.slice(0, 100)}`)
    }
    const where = `line ${++lineNumber}`
    if (!isObject(line)) return fail(`${where} is not an object`)
    if (lineNumber === 1) {
      if (line.v !== PROTOCOL_VERSION)
        fail(`speaks protocol version ${String(line.v)}, not ${PROTOCOL_VERSION}`)
      return
    }
    if (result) fail(`${where} comes after the result`)
    if ('op' in line) onOp(checkOp(line.op, where, fail))
    else if ('result' in line) result = checkResult(line.result, fail)
    else fail(`${where} is neither an op nor the result`)
  }
  let pending = ''
  const decoder = new TextDecoder()
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true })
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const text of lines) take(text)
  }
  take(pending + decoder.decode())
  return result ?? fail('ended without a result (cut off?)')
}

function checkOp(op: unknown, where: string, fail: (what: string) => never): NewOp {
  if (!isObject(op) || !isName(op.name)) return fail(`${where}: an op without a name`)
  switch (op.kind) {
    case 'step':
      if (op.status === 'failed' ? !isStoredError(op.error) : op.status !== 'done')
        fail(`${where}: a step must be done or failed with an error`)
      break
    case 'sleep':
      if (
        !optionalNumber(op.ms) ||
        !optionalNumber(op.until) ||
        (op.ms === undefined) === (op.until === undefined)
      )
        fail(`${where}: a sleep needs ms or until`)
      break
    case 'signal':
      if (!isName(op.signal) || !optionalNumber(op.timeoutMs))
        fail(`${where}: a signal wait needs a signal name`)
      break
    case 'wakeup':
      if (!isName(op.key) || !optionalNumber(op.timeoutMs)) fail(`${where}: a wakeup wait needs a key`)
      break
    case 'child':
    case 'spawn':
      if (!isName(op.task) || (op.options !== undefined && !isObject(op.options)))
        fail(`${where}: a ${op.kind} needs a task id`)
      break
    default:
      fail(`${where}: an op of unknown kind ${JSON.stringify(op.kind)}`)
  }
  return op as unknown as NewOp
}

function checkResult(result: unknown, fail: (what: string) => never): InvokeResult {
  if (!isObject(result)) return fail('has a result that is not an object')
  switch (result.status) {
    case 'completed':
    case 'yield':
    case 'blocked':
      break
    case 'failed':
      if (!isStoredError(result.error)) fail('failed without an error')
      break
    default:
      fail(`has an unknown result status ${JSON.stringify(result.status)}`)
  }
  return result as unknown as InvokeResult
}

/** Checks an app's manifest; throws `ProtocolError` naming what is wrong. */
export function parseManifest(body: unknown, url: string): Manifest {
  const fail = (what: string): never => {
    throw new ProtocolError(`the functions manifest of ${url} ${what}`)
  }
  if (!isObject(body)) return fail('is not a JSON object')
  if (body.v !== PROTOCOL_VERSION) fail(`speaks protocol version ${String(body.v)}, not ${PROTOCOL_VERSION}`)
  if (!Array.isArray(body.functions)) fail('has no functions array')
  for (const [i, fn] of (body.functions as unknown[]).entries()) {
    if (!isObject(fn) || !isName(fn.id)) fail(`functions[${i}] has no id`)
    const f = fn as Record<string, unknown>
    if (!(EXECUTION_MODES as readonly unknown[]).includes(f.mode))
      fail(`function "${String(f.id)}": mode must be ${EXECUTION_MODES.join(' or ')}`)
    if (typeof f.maxInvocationMs !== 'number' || !(f.maxInvocationMs > 0))
      fail(`function "${String(f.id)}": maxInvocationMs must be a positive number`)
    if (!isObject(f.input)) fail(`function "${String(f.id)}": input must be a JSON Schema`)
  }
  return body as unknown as Manifest
}
