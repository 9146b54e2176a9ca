/**
 * Signed calls from Ratchet to a web app. Each call carries its execution id, attempt,
 * idempotency key, procedure path and a timestamp, and an HMAC-SHA256 over all of them and
 * the body, keyed with the app's secret. Web Crypto only: it runs in Node, edge and
 * serverless runtimes alike.
 */

export const HEADERS = {
  executionId: 'x-ratchet-execution-id',
  attempt: 'x-ratchet-attempt',
  idempotencyKey: 'x-ratchet-idempotency-key',
  procedure: 'x-ratchet-procedure',
  timestamp: 'x-ratchet-timestamp',
  signature: 'x-ratchet-signature',
} as const

/** What a signed call says about itself (all covered by the signature). */
export interface CallMeta {
  executionId: string
  attempt: number
  /** Stable across the attempts of one execution: let the app deduplicate retries with it. */
  idempotencyKey: string
  /** The oRPC procedure path, e.g. `email.send`. */
  procedure: string
}

/** A secret shorter than this is refused: it would make the signature guessable. */
export const MIN_SECRET_LENGTH = 32

const encoder = new TextEncoder()
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>
const keys = new Map<string, Promise<HmacKey>>()

function hmacKey(secret: string): Promise<HmacKey> {
  let key = keys.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ])
    keys.set(secret, key)
  }
  return key
}

/** The exact bytes signed: a version, then every field on its own line, then the body. */
export function canonicalString(meta: CallMeta, timestamp: number, body: string): string {
  return [
    'ratchet-v1',
    String(timestamp),
    meta.executionId,
    String(meta.attempt),
    meta.idempotencyKey,
    meta.procedure,
    body,
  ].join('\n')
}

/** Hex HMAC-SHA256 of the call. */
export async function sign(secret: string, meta: CallMeta, timestamp: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(secret),
    encoder.encode(canonicalString(meta, timestamp, body)),
  )
  return toHex(new Uint8Array(mac))
}

/** Whether `signature` (hex) is the call's HMAC. Compared by Web Crypto, in constant time. */
export async function verifySignature(
  secret: string,
  meta: CallMeta,
  timestamp: number,
  body: string,
  signature: string,
): Promise<boolean> {
  const bytes = fromHex(signature)
  if (!bytes || bytes.length !== 32) return false
  return crypto.subtle.verify(
    'HMAC',
    await hmacKey(secret),
    bytes,
    encoder.encode(canonicalString(meta, timestamp, body)),
  )
}

/** The headers of a signed call. */
export async function signedHeaders(
  secret: string,
  meta: CallMeta,
  body: string,
  now: number,
): Promise<Record<string, string>> {
  return {
    [HEADERS.executionId]: meta.executionId,
    [HEADERS.attempt]: String(meta.attempt),
    [HEADERS.idempotencyKey]: meta.idempotencyKey,
    [HEADERS.procedure]: meta.procedure,
    [HEADERS.timestamp]: String(now),
    [HEADERS.signature]: await sign(secret, meta, now, body),
  }
}

export function checkSecret(secret: unknown, where: string): string {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH)
    throw new TypeError(`${where}: secret must be a string of at least ${MIN_SECRET_LENGTH} characters`)
  return secret
}

function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

/**
 * `Uint8Array<ArrayBuffer>`, not the default `Uint8Array<ArrayBufferLike>`: with the DOM lib,
 * Web Crypto's `BufferSource` excludes views of a SharedArrayBuffer, so a web app's `tsc` would
 * reject passing the wider type to `crypto.subtle.verify`.
 */
function fromHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length % 2 !== 0) return undefined
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}
