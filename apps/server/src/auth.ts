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
 * Parses `RATCHET_API_KEYS`: comma-separated entries, each `name:secret` or a bare `secret`
 * (a bare one is named `key1`, `key2`, ... by its position). An entry with a colon is always
 * `name:secret`, split at its first colon: a secret that contains ':' is written with a name
 * (`ci:abc:def` is the key "ci" with the secret "abc:def"), and a bare secret has no colon.
 *
 * Throws, naming the entry by its position and never echoing any part of it that may belong to
 * a secret, when the part before the colon is not a valid name (a letter, then up to 31 letters,
 * digits, `_`, `.` or `-`), when a secret is shorter than 16 characters, or when a name repeats.
 * (Taking such an entry as a bare secret instead would quietly turn a typo in a name into part
 * of the secret.) Also throws when the variable is set but holds no entry at all (`,`): that
 * would silently turn authentication off.
 */
export function parseApiKeys(value: string | undefined): ApiKey[] {
  if (!value?.trim()) return []
  if (value.split(',').every((entry) => !entry.trim()))
    throw new Error('RATCHET_API_KEYS is set but holds no key; unset it to run without keys (loopback only)')
  const keys: ApiKey[] = []
  value.split(',').forEach((raw, index) => {
    const entry = raw.trim()
    if (!entry) return
    const position = `RATCHET_API_KEYS entry ${index + 1}`
    const colon = entry.indexOf(':')
    if (colon >= 0 && !KEY_NAME.test(entry.slice(0, colon))) {
      throw new Error(
        `${position}: the part before the first ':' is not a valid key name (a letter, then up to 31 ` +
          `letters, digits, '_', '.' or '-'); write entries as name:secret (a secret may contain ':' ` +
          `after its name) or as a bare secret without ':'`,
      )
    }
    const name = colon >= 0 ? entry.slice(0, colon) : `key${index + 1}`
    const secret = colon >= 0 ? entry.slice(colon + 1) : entry
    if (secret.length < MIN_API_KEY_LENGTH) {
      throw new Error(`${position} ("${name}"): the secret must be at least ${MIN_API_KEY_LENGTH} characters`)
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
