/**
 * Execution ids are UUIDv7: time-ordered (so `list` pages by id), opaque to clients, and a
 * native `uuid` in PostgreSQL. Within one millisecond a counter keeps them monotonic.
 */
let lastMs = -1
let counter = 0

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))
const hex = (bytes: Uint8Array) => {
  let out = ''
  for (const b of bytes) out += HEX[b]!
  return out
}

// Random bytes are drawn 4 KiB at a time: one getRandomValues call per id was a visible cost
// when a fan-out creates thousands of children at once.
const POOL_SIZE = 4096
const pool = new Uint8Array(POOL_SIZE)
let poolOffset = POOL_SIZE

function randomBytes16(): Uint8Array {
  if (poolOffset + 16 > POOL_SIZE) {
    crypto.getRandomValues(pool)
    poolOffset = 0
  }
  const bytes = pool.slice(poolOffset, poolOffset + 16)
  poolOffset += 16
  return bytes
}

export function newExecutionId(nowMs: number): string {
  let ms = Math.floor(nowMs)
  if (ms <= lastMs) {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      // 4096 ids in one millisecond: borrow the next millisecond rather than repeat.
      ms = lastMs + 1
      counter = 0
    }
  } else {
    counter = 0
  }
  lastMs = ms
  const bytes = randomBytes16()
  // 48-bit big-endian timestamp
  let t = ms
  for (let i = 5; i >= 0; i--) {
    bytes[i] = t % 256
    t = Math.floor(t / 256)
  }
  bytes[6] = 0x70 | ((counter >> 8) & 0x0f) // version 7, counter high bits
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | (bytes[8]! & 0x3f) // RFC 9562 variant
  const h = hex(bytes)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function isExecutionId(value: string): boolean {
  return UUID.test(value)
}
