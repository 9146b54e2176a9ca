import { HEADERS, verifySignature, type CallMeta } from '../signing'

/** What a verified call from Ratchet says: put in the procedure's context by the helpers. */
export interface RatchetRequestInfo extends CallMeta {
  /** When Ratchet signed the call (ms). */
  timestamp: number
}

export interface VerifyOptions {
  /** The secret shared with Ratchet; several during a rotation (any may match). */
  secret: string | readonly string[]
  /** Calls signed longer ago (or further ahead) than this are replays. @default 300_000 (5 min) */
  toleranceMs?: number
  /** The procedure path the call must be for, e.g. `email.send`. @default not checked */
  procedure?: string
  /** @default Date.now() */
  now?: number
}

export type SignatureProblem = 'MISSING_SIGNATURE' | 'EXPIRED_SIGNATURE' | 'BAD_SIGNATURE' | 'WRONG_PROCEDURE'

/** A call that is not a valid signed call from Ratchet. Answer it with `status` (401). */
export class RatchetSignatureError extends Error {
  readonly status = 401
  constructor(
    readonly code: SignatureProblem,
    message: string,
  ) {
    super(message)
    this.name = 'RatchetSignatureError'
  }
}

/**
 * Checks that `request` is a call signed by Ratchet with the shared secret, made within
 * `toleranceMs`, for `procedure` when given. Reads a clone of the body, so the request can
 * still be handled. Resolves with the call's execution id, attempt and idempotency key;
 * rejects with `RatchetSignatureError` (unsigned, tampered, wrong secret, replayed).
 */
export async function verifyRatchetRequest(
  request: Request,
  options: VerifyOptions,
): Promise<RatchetRequestInfo> {
  return verifySignedCall(request, options, async () =>
    request.method === 'GET' || request.method === 'HEAD' ? '' : await request.clone().text(),
  )
}

/**
 * @internal `verifyRatchetRequest` with the body read by the caller: `readBody` is called once
 * the headers passed their checks, and its text is what is verified (a handler that parses the
 * same text reads the body once, not a clone and then the request).
 */
export async function verifySignedCall(
  request: Request,
  options: VerifyOptions,
  readBody: () => Promise<string>,
): Promise<RatchetRequestInfo> {
  const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret
  if (secrets.length === 0) throw new TypeError('verifyRatchetRequest: no secret given')
  const header = (name: string) => request.headers.get(name)
  const signature = header(HEADERS.signature)
  const timestampText = header(HEADERS.timestamp)
  const executionId = header(HEADERS.executionId)
  const attemptText = header(HEADERS.attempt)
  const idempotencyKey = header(HEADERS.idempotencyKey)
  const procedure = header(HEADERS.procedure)
  if (!signature || !timestampText || !executionId || !attemptText || !idempotencyKey || procedure === null) {
    throw new RatchetSignatureError(
      'MISSING_SIGNATURE',
      'not a signed call from Ratchet: signature headers missing',
    )
  }
  const timestamp = Number(timestampText)
  const attempt = Number(attemptText)
  const now = options.now ?? Date.now()
  const tolerance = options.toleranceMs ?? 300_000
  if (!Number.isSafeInteger(timestamp) || Math.abs(now - timestamp) > tolerance) {
    throw new RatchetSignatureError(
      'EXPIRED_SIGNATURE',
      `the call was signed ${Number.isSafeInteger(timestamp) ? `${Math.round((now - timestamp) / 1000)} s ago` : 'at no valid time'}; calls older than ${tolerance / 1000} s are refused as replays`,
    )
  }
  const meta: CallMeta = { executionId, attempt, idempotencyKey, procedure }
  const body = await readBody()
  let valid = false
  for (const secret of secrets)
    if (await verifySignature(secret, meta, timestamp, body, signature)) valid = true
  if (!valid || !Number.isSafeInteger(attempt)) {
    throw new RatchetSignatureError(
      'BAD_SIGNATURE',
      'the signature does not match the call (tampered, or another secret)',
    )
  }
  if (options.procedure !== undefined && options.procedure !== procedure) {
    throw new RatchetSignatureError(
      'WRONG_PROCEDURE',
      `the call was signed for ${procedure || '(none)'}, not ${options.procedure}`,
    )
  }
  return { ...meta, timestamp }
}
