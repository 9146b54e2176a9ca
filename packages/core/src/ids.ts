import { V7Generator } from 'uuidv7'

/**
 * Execution and event ids are UUIDv7 (RFC 9562): time-ordered (so `list` pages by id), opaque
 * to clients, and a native `uuid` in PostgreSQL. The generator is `uuidv7`'s: it takes the
 * timestamp from the caller (the engine's Clock, so a ManualClock's time is the id's time),
 * keeps ids made in the same millisecond in order with a 42-bit counter, and draws its random
 * bits from Web Crypto (`crypto.getRandomValues`), so it runs in any runtime.
 *
 * A clock that goes back a little (up to 10 s) keeps the ids in order, carrying the later
 * time; one that goes back further (a test's ManualClock beside the system clock) starts over
 * at its own time.
 */
const generator = new V7Generator()

export function newExecutionId(nowMs: number): string {
  return generator.generateOrResetWithTs(Math.floor(nowMs)).toString()
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Whether `value` has the shape of an id (lower-case hyphenated UUID): checked before any read. */
export function isExecutionId(value: string): boolean {
  return UUID.test(value)
}
