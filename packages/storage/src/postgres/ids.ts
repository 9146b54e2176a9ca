/**
 * Execution and event ids as PostgreSQL stores them (`uuid`). Ids are opaque strings at the
 * port, and the SQLite adapter compares them as text; an id that is not a canonical
 * (lower-case, hyphenated) UUID names nothing here, so reads given one return nothing instead
 * of failing with PostgreSQL's "invalid input syntax for type uuid".
 */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Whether `id` can name a stored row (a canonical UUID, as the engine makes them). */
export function isStoredId(id: string): boolean {
  return CANONICAL_UUID.test(id)
}
