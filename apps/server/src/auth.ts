import { createHash, timingSafeEqual } from 'node:crypto'

/** A named API key. The name appears in logs; the secret never does. */
export interface ApiKey {
  name: string
  secret: string
}

export const MIN_API_KEY_LENGTH = 16

/** A key's name: a letter, then up to 31 letters, digits, `_`, `.` or `-`. */
const KEY_NAME = /^[A-Za-z][\w.-]{0,31}$/

/**
 * Parses `RATCHET_API_KEYS`: comma-separated `name:secret` or bare `secret` entries (a bare
 * one is named `key1`, `key2`, ...; an entry whose part before the first colon is not a
 * valid name is a bare secret). Throws with the offending entry's position (never its
 * value) when a secret is shorter than 16 characters or a name repeats.
 */
export function parseApiKeys(value: string | undefined): ApiKey[] {
  if (!value?.trim()) return []
  const keys: ApiKey[] = []
  value.split(',').forEach((raw, index) => {
    const entry = raw.trim()
    if (!entry) return
    // Only a short identifier before the first colon is a name: a bare secret that happens
    // to contain a colon must not have its first part printed in logs as a "name".
    const colon = entry.indexOf(':')
    const named = colon > 0 && KEY_NAME.test(entry.slice(0, colon))
    const name = named ? entry.slice(0, colon) : `key${index + 1}`
    const secret = named ? entry.slice(colon + 1) : entry
    if (secret.length < MIN_API_KEY_LENGTH) {
      throw new Error(
        `RATCHET_API_KEYS entry ${index + 1} ("${name}"): the secret must be at least ${MIN_API_KEY_LENGTH} characters`,
      )
    }
    if (keys.some((k) => k.name === name))
      throw new Error(`RATCHET_API_KEYS: the name "${name}" is used twice`)
    keys.push({ name, secret })
  })
  return keys
}

const digest = (text: string) => createHash('sha256').update(text).digest()

/**
 * Checks an `Authorization: Bearer <secret>` header against the keys in constant time
 * (digests of equal length, every key compared). Returns the matching key's name.
 */
export function authenticate(keys: readonly ApiKey[], header: string | undefined): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '')
  const presented = digest(match?.[1]?.trim() ?? '')
  let found: string | undefined
  for (const key of keys) {
    if (timingSafeEqual(presented, digest(key.secret)) && found === undefined) found = key.name
  }
  return found
}
