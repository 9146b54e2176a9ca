import { ConflictError, sameJson, type EventRow, type NewExecution, type PublishOutcome } from '@ratchet/core'
import { and, desc, eq, lt, sql } from 'drizzle-orm'
import type { SqliteDb } from './database'
import type { prepareEnqueue } from './enqueue'
import { events } from './schema'

/**
 * `publishEvent`: the event row and the executions it starts, in one transaction (the
 * enqueue's own transaction nests as a savepoint), so a failure stores neither.
 */
export function preparePublishEvent(db: SqliteDb, enqueue: ReturnType<typeof prepareEnqueue>) {
  const insert = db.$client.prepare<[EventRow]>(
    `INSERT INTO events (id, type, payload, created_at, execution_ids, publish_id)
     VALUES (@id, @type, @payload, @createdAt, @executionIds, @publishId)`,
  )
  const byPublishId = db
    .select()
    .from(events)
    .where(eq(events.publishId, sql.placeholder('publishId')))
    .prepare()
  const run = db.$client.transaction(
    (event: EventRow, executions: readonly NewExecution[], now: number): PublishOutcome => {
      if (event.publishId !== null) {
        const earlier = byPublishId.get({ publishId: event.publishId })
        if (earlier) {
          if (!sameJson(earlier.payload, event.payload))
            throw new ConflictError(
              `event id "${event.publishId}" was already published with a different event (${earlier.id})`,
            )
          return { event: earlier, outcomes: [], repeat: true }
        }
      }
      const outcomes = executions.length > 0 ? enqueue(executions, now) : []
      const recorded = { ...event, executionIds: JSON.stringify(outcomes.map((o) => o.row.id)) }
      insert.run(recorded)
      return { event: recorded, outcomes, repeat: false }
    },
  )
  return (event: EventRow, executions: readonly NewExecution[], now: number) => run(event, executions, now)
}

/** `listEvents`: newest first, optionally of one type. */
export function listEvents(
  db: SqliteDb,
  query: { type?: string; beforeId?: string; limit: number },
): EventRow[] {
  return db
    .select()
    .from(events)
    .where(
      and(
        query.type !== undefined ? eq(events.type, query.type) : undefined,
        query.beforeId !== undefined ? lt(events.id, query.beforeId) : undefined,
      ),
    )
    .orderBy(desc(events.id))
    .limit(query.limit)
    .all()
}
