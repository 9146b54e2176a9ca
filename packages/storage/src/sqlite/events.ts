import type { EnqueueOutcome, EventRow, NewExecution } from '@ratchet/core'
import { and, desc, eq, lt } from 'drizzle-orm'
import type { SqliteDb } from './database'
import type { prepareEnqueue } from './enqueue'
import { events } from './schema'

/**
 * `publishEvent`: the event row and the executions it starts, in one transaction (the
 * enqueue's own transaction nests as a savepoint), so a failure stores neither.
 */
export function preparePublishEvent(db: SqliteDb, enqueue: ReturnType<typeof prepareEnqueue>) {
  const insert = db.$client.prepare<[EventRow]>(
    `INSERT INTO events (id, type, payload, created_at, execution_ids)
     VALUES (@id, @type, @payload, @createdAt, @executionIds)`,
  )
  const run = db.$client.transaction(
    (event: EventRow, executions: readonly NewExecution[], now: number): EnqueueOutcome[] => {
      const outcomes = executions.length > 0 ? enqueue(executions, now) : []
      // An execution that already existed (the same event id published again) is recorded too.
      insert.run({ ...event, executionIds: JSON.stringify(outcomes.map((o) => o.row.id)) })
      return outcomes
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
