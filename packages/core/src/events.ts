import { ValidationError } from './errors'
import { validateSchema, type StandardSchemaV1 } from './schema'
import { EVENT_TYPE_PATTERN } from './task'

/** A published event: what `events.publish` returns. */
export interface PublishedEvent {
  eventId: string
  type: string
  /** One per task listening to the type (none is fine: the event is recorded all the same). */
  executions: { taskId: string; executionId: string; created: boolean }[]
}

/** A recorded event, as the engine reports it. Times are epoch ms. */
export interface RecordedEvent {
  id: string
  type: string
  event: unknown
  createdAt: number
  executionIds: string[]
}

/**
 * Checks an event against the server's events schema (a discriminated union on `type`, when
 * one is configured) and returns the validated event and its type. Throws `ValidationError`
 * with the schema's issues, their paths under `event`.
 */
export async function validateEvent(
  schema: StandardSchemaV1 | undefined,
  event: unknown,
): Promise<{ value: Record<string, unknown>; type: string }> {
  let value: unknown = event
  if (schema) {
    const result = await validateSchema(schema, event)
    if (!result.ok) {
      throw new ValidationError(
        'the event does not match the events schema',
        result.issues.map((issue) => ({ ...issue, path: ['event', ...issue.path] })),
      )
    }
    value = result.value
  }
  const type = (value as { type?: unknown } | null)?.type
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof type !== 'string') {
    throw new ValidationError('an event is an object with a string `type`', [
      { path: ['event', 'type'], message: 'expected a string' },
    ])
  }
  if (!EVENT_TYPE_PATTERN.test(type)) {
    throw new ValidationError(`event type ${JSON.stringify(type)} is not a valid event type`, [
      { path: ['event', 'type'], message: `expected a string matching ${String(EVENT_TYPE_PATTERN)}` },
    ])
  }
  return { value: value as Record<string, unknown>, type }
}
