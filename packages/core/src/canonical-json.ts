/**
 * Canonical JSON: the same value gives the same text whatever order its object keys were
 * written in. Object keys are sorted (by UTF-16 code units, recursively); arrays keep their
 * order; numbers and strings are written as `JSON.stringify` writes them.
 *
 * Idempotency uses it on the rare path only: inputs and events are stored as the caller sent
 * them (no sorting on the enqueue hot path), compared as text first, and canonically only
 * when the texts differ.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value))
    return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`
  const record = value as Record<string, unknown>
  const fields: string[] = []
  for (const key of Object.keys(record).sort()) {
    const field = record[key]
    // As JSON.stringify does: an undefined (or function) field is left out.
    if (field === undefined || typeof field === 'function') continue
    fields.push(`${JSON.stringify(key)}:${canonicalJson(field)}`)
  }
  return `{${fields.join(',')}}`
}

/** Whether two JSON texts hold the same value, whatever their key order. Throws on text that is not JSON. */
export function sameJson(a: string, b: string): boolean {
  return a === b || canonicalJson(JSON.parse(a)) === canonicalJson(JSON.parse(b))
}
