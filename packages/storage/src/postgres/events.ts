import { ConflictError, sameJson, type EventRow, type NewExecution, type PublishOutcome } from '@ratchet/core'
import { statement, type PostgresDatabase, type Tx } from './database'
import { enqueueInTx } from './enqueue'
import { isStoredId } from './ids'

const EVENT_COLUMNS = `id, type, payload, created_at AS "createdAt", execution_ids AS "executionIds",
  publish_id AS "publishId"`

/**
 * Records an event; with a publish id, only if no event holds it yet (ON CONFLICT DO NOTHING on
 * events_publish_id_uq, which waits for a concurrent publish of the same id to commit or roll
 * back, so of two concurrent publishes exactly one records the event). Returns the id when
 * recorded.
 */
const INSERT = statement(
  'event_insert',
  `INSERT INTO events (id, type, payload, created_at, execution_ids, publish_id)
   VALUES ($1, $2, $3, $4, $5, $6)
   ON CONFLICT (publish_id) WHERE publish_id IS NOT NULL DO NOTHING
   RETURNING id`,
)

const BY_PUBLISH_ID = statement(
  'event_by_publish_id',
  `SELECT ${EVENT_COLUMNS} FROM events WHERE publish_id = $1`,
)

const SET_EXECUTIONS = statement('event_set_executions', `UPDATE events SET execution_ids = $2 WHERE id = $1`)

/** Times an event whose publish id conflicted may be found gone (purged meanwhile) and tried again. */
const MAX_CLAIMS = 3

/**
 * `publishEvent`: the event row and the executions it starts (H3's `enqueueInTx`: each as
 * `enqueue` would, idempotency keys included), in one transaction. An event with a publish id is
 * recorded first, so a concurrent publish of the same id waits for this one and then sees a
 * repeat. Failure semantics: a repeat with a different payload (by `sameJson`) throws
 * `ConflictError`, and so does an idempotency key reused with another input; either way, and on
 * any other error, nothing is written. An unreachable database throws `StorageUnavailableError`.
 */
export function publishEvent(
  database: PostgresDatabase,
  event: EventRow,
  executions: readonly NewExecution[],
  now: number,
): Promise<PublishOutcome> {
  return database.transaction(async (tx) => {
    if (event.publishId === null) {
      const outcomes = executions.length > 0 ? await enqueueInTx(tx, executions, now) : []
      const recorded = { ...event, executionIds: JSON.stringify(outcomes.map((o) => o.row.id)) }
      await insert(tx, recorded)
      return { event: recorded, outcomes, repeat: false }
    }
    for (let tries = 1; ; tries++) {
      const recorded = { ...event, executionIds: '[]' }
      if (await insert(tx, recorded)) {
        if (executions.length === 0) return { event: recorded, outcomes: [], repeat: false }
        const outcomes = await enqueueInTx(tx, executions, now)
        recorded.executionIds = JSON.stringify(outcomes.map((o) => o.row.id))
        await tx.query(SET_EXECUTIONS, [recorded.id, recorded.executionIds])
        return { event: recorded, outcomes, repeat: false }
      }
      const earlier = (await tx.query<EventRow>(BY_PUBLISH_ID, [event.publishId])).rows[0]
      if (earlier) {
        if (!sameJson(earlier.payload, event.payload))
          throw new ConflictError(
            `event id "${event.publishId}" was already published with a different event (${earlier.id})`,
          )
        return { event: earlier, outcomes: [], repeat: true }
      }
      if (tries >= MAX_CLAIMS)
        throw new Error(`event id "${event.publishId}" conflicted, but no event holds it (${tries} tries)`)
    }
  })
}

/** Inserts the event; false when its publish id is taken. */
async function insert(tx: Tx, event: EventRow): Promise<boolean> {
  const result = await tx.query(INSERT, [
    event.id,
    event.type,
    event.payload,
    event.createdAt,
    event.executionIds,
    event.publishId,
  ])
  return result.rowCount === 1
}

/**
 * The list, newest first, of one type or all: events_type_idx (type, id) or the primary key,
 * read backwards from `beforeId`. One statement per combination of filters, so each has a plan
 * that uses its index.
 */
const LIST = {
  all: statement('events_list', `SELECT ${EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT $1`),
  before: statement(
    'events_list_before',
    `SELECT ${EVENT_COLUMNS} FROM events WHERE id < $2 ORDER BY id DESC LIMIT $1`,
  ),
  type: statement(
    'events_list_type',
    `SELECT ${EVENT_COLUMNS} FROM events WHERE type = $2 ORDER BY id DESC LIMIT $1`,
  ),
  typeBefore: statement(
    'events_list_type_before',
    `SELECT ${EVENT_COLUMNS} FROM events WHERE type = $2 AND id < $3 ORDER BY id DESC LIMIT $1`,
  ),
  /** `beforeId` not a UUID: compared as text, as SQLite does (canonical UUIDs sort alike). */
  textBefore: statement(
    'events_list_text_before',
    `SELECT ${EVENT_COLUMNS} FROM events WHERE ($2::text IS NULL OR type = $2) AND id::text < $3
      ORDER BY id DESC LIMIT $1`,
  ),
}

/**
 * `listEvents`: recorded events, newest first (ids are time-ordered), optionally of one type,
 * keyset-paginated by id. One autocommitted statement. Failure semantics: an unreachable
 * database throws `StorageUnavailableError`.
 */
export async function listEvents(
  database: PostgresDatabase,
  query: { type?: string; beforeId?: string; limit: number },
): Promise<EventRow[]> {
  const { type, beforeId, limit } = query
  const [list, values] =
    beforeId !== undefined && !isStoredId(beforeId)
      ? [LIST.textBefore, [limit, type ?? null, beforeId]]
      : type === undefined
        ? beforeId === undefined
          ? [LIST.all, [limit]]
          : [LIST.before, [limit, beforeId]]
        : beforeId === undefined
          ? [LIST.type, [limit, type]]
          : [LIST.typeBefore, [limit, type, beforeId]]
  return (await database.query<EventRow>(list, values)).rows
}
