import { PayloadTooLargeError, ValidationError } from './errors'

/** Default limit of one payload (input, output) in bytes of JSON: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024

const encoder = new TextEncoder()

/** UTF-8 length of a string, computed only when the cheap bound cannot decide. */
function utf8Length(text: string, limit: number): number {
  // Each UTF-16 code unit is at most 3 UTF-8 bytes, and at least 1.
  if (text.length * 3 <= limit) return text.length
  return encoder.encode(text).length
}

/**
 * Serializes a payload to JSON once, for storage. `undefined` becomes `null`.
 * Throws {@link PayloadTooLargeError} above `limitBytes`, and {@link ValidationError} when the
 * value cannot be represented as JSON (a cycle, a BigInt).
 */
export function serializePayload(value: unknown, field: string, limitBytes: number): string {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (error) {
    throw new ValidationError(
      `${field} is not serializable to JSON: ${(error as Error).message}`,
      [{ path: [], message: (error as Error).message }],
      'INVALID_PAYLOAD',
    )
  }
  json ??= 'null'
  const size = utf8Length(json, limitBytes)
  if (size > limitBytes) throw new PayloadTooLargeError(field, size, limitBytes)
  return json
}

export function parsePayload(json: string | null): unknown {
  return json === null ? undefined : JSON.parse(json)
}
