import type { StandardJSONSchemaV1, StandardSchemaV1 } from '@standard-schema/spec'
import type { Issue } from './errors'

export type { StandardSchemaV1, StandardJSONSchemaV1 }

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: Issue[] }

function pathKey(segment: PropertyKey | StandardSchemaV1.PathSegment): string | number {
  const key = typeof segment === 'object' ? segment.key : segment
  return typeof key === 'number' ? key : String(key)
}

/** Runs a Standard Schema (zod, valibot, arktype, ...) and flattens its issues. */
export async function validateSchema<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
): Promise<ValidationResult<StandardSchemaV1.InferOutput<S>>> {
  let result = schema['~standard'].validate(value)
  if (result instanceof Promise) result = await result
  if (result.issues) {
    return {
      ok: false,
      issues: result.issues.map((i) => ({ path: (i.path ?? []).map(pathKey), message: i.message })),
    }
  }
  return { ok: true, value: result.value as StandardSchemaV1.InferOutput<S> }
}

/** "email: Invalid email; age: Too small" — each issue with the field it concerns. */
export function describeIssues(issues: Issue[]): string {
  return issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')
}

/**
 * The JSON Schema of a Standard Schema's input or output, when its library implements
 * Standard JSON Schema (zod 4.2+ does). `undefined` when it cannot say.
 */
export function toJsonSchema(
  schema: StandardSchemaV1 | undefined,
  side: 'input' | 'output',
): Record<string, unknown> | undefined {
  const props = schema?.['~standard'] as Partial<StandardJSONSchemaV1.Props> | undefined
  if (!props?.jsonSchema) return undefined
  try {
    return props.jsonSchema[side]({ target: 'draft-2020-12' })
  } catch {
    return undefined
  }
}
