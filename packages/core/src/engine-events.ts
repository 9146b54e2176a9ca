/**
 * The engine's published events (`Engine.publish`, `listEvents`): an event is recorded with the
 * executions of the tasks that listen to its type, in one transaction.
 */
import type { ChangeFeed } from './change-feed'
import type { Clock } from './clock'
import { ValidationError } from './errors'
import { validateEvent, type PublishedEvent, type RecordedEvent } from './events'
import type { Executor } from './executor'
import { newExecutionId } from './ids'
import { serializePayload } from './payload'
import { prepareExecution } from './prepare-execution'
import type { TaskRegistry } from './registry'
import type { StandardSchemaV1 } from './schema'
import type { EventRow, NewExecution, Storage } from './storage'

interface Deps {
  storage: Storage
  registry: TaskRegistry
  clock: Clock
  maxPayloadBytes: number
  executor: Executor
  changes: ChangeFeed
}

/** Publishes and lists events for one engine; see `Engine.publish` and `Engine.listEvents`. */
export class EventPublisher {
  constructor(
    private readonly deps: Deps,
    private readonly eventsSchema: StandardSchemaV1 | undefined,
  ) {}

  async publish(event: unknown, options: { id?: string }): Promise<PublishedEvent> {
    const { storage, registry, clock, maxPayloadBytes, executor, changes } = this.deps
    const { value, type } = await validateEvent(this.eventsSchema, event)
    if (
      options.id !== undefined &&
      (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > 200)
    )
      throw new ValidationError('id must be a string of 1 to 200 characters', [
        { path: ['id'], message: 'invalid id' },
      ])
    const now = clock.now()
    const payload = serializePayload(value, 'event', maxPayloadBytes)
    const rows: NewExecution[] = []
    for (const listener of registry.listening(type)) {
      try {
        rows.push(
          await prepareExecution(
            registry,
            {
              task: listener,
              input: value,
              options: options.id !== undefined ? { idempotencyKey: `event:${options.id}` } : {},
            },
            now,
            maxPayloadBytes,
          ),
        )
      } catch (error) {
        if (error instanceof Error) error.message = `task "${listener.id}" (on "${type}"): ${error.message}`
        throw error
      }
    }
    const eventRow: EventRow = {
      id: newExecutionId(now),
      type,
      payload,
      createdAt: now,
      executionIds: JSON.stringify(rows.map((r) => r.id)),
      publishId: options.id ?? null,
    }
    const {
      event: recorded,
      outcomes,
      repeat,
    } = await executor.wakeAfter(storage.publishEvent(eventRow, rows, now))
    if (repeat) {
      // The same event again: report what the first publish started.
      const ids = JSON.parse(recorded.executionIds) as string[]
      const started = await Promise.all(ids.map((id) => storage.get(id)))
      return {
        eventId: recorded.id,
        type: recorded.type,
        executions: started.flatMap((row) =>
          row ? [{ taskId: row.taskId, executionId: row.id, created: false }] : [],
        ),
      }
    }
    for (const outcome of outcomes) {
      executor.observer?.enqueued?.(outcome.row, outcome.created)
      if (outcome.created)
        changes.emit({
          id: outcome.row.id,
          taskId: outcome.row.taskId,
          status: 'queued',
          run: 0,
          at: now,
        })
    }
    if (outcomes.length > 0) executor.wake()
    return {
      eventId: recorded.id,
      type,
      executions: outcomes.map((o) => ({ taskId: o.row.taskId, executionId: o.row.id, created: o.created })),
    }
  }

  async list(query: {
    type?: string
    cursor?: string
    limit?: number
  }): Promise<{ items: RecordedEvent[]; nextCursor: string | null }> {
    const limit = query.limit ?? 50
    if (!Number.isInteger(limit) || limit < 1 || limit > 500)
      throw new ValidationError(`limit must be an integer from 1 to 500, got ${String(limit)}`, [
        { path: ['limit'], message: 'expected an integer from 1 to 500' },
      ])
    const rows = await this.deps.storage.listEvents({
      ...(query.type !== undefined ? { type: query.type } : {}),
      ...(query.cursor !== undefined ? { beforeId: query.cursor } : {}),
      limit: limit + 1,
    })
    const page = rows.slice(0, limit)
    return {
      items: page.map((r) => ({
        id: r.id,
        type: r.type,
        event: JSON.parse(r.payload) as unknown,
        createdAt: r.createdAt,
        executionIds: JSON.parse(r.executionIds) as string[],
      })),
      nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
    }
  }
}
