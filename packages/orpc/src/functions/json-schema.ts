import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js'
import type { Issue, StandardSchemaV1 } from '@ratchet/core'

// One compiler for every function: ajv caches compiled schemas by identity.
let ajv: Ajv2020 | undefined

/**
 * A Standard Schema that checks values against a JSON Schema (draft 2020-12, what zod's
 * `toJSONSchema` writes), so the server validates an app function's input at enqueue without
 * the app's schema library. ajv compiles each schema once to a function, which is why it is
 * used rather than an interpreter. Throws `TypeError` naming `where` for an invalid schema.
 */
export function jsonSchemaValidator(schema: Record<string, unknown>, where: string): StandardSchemaV1 {
  ajv ??= new Ajv2020({ allErrors: true, strict: false })
  let validate: ReturnType<Ajv2020['compile']>
  try {
    validate = ajv.compile(schema)
  } catch (error) {
    throw new TypeError(`${where}: not a valid JSON Schema: ${(error as Error).message}`, { cause: error })
  }
  return {
    '~standard': {
      version: 1,
      vendor: 'ratchet-json-schema',
      validate: (value) => (validate(value) ? { value } : { issues: (validate.errors ?? []).map(issueOf) }),
    },
  }
}

function issueOf(error: ErrorObject): Issue {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
  const extra =
    error.keyword === 'required' ? [(error.params as { missingProperty: string }).missingProperty] : []
  const message =
    error.keyword === 'additionalProperties'
      ? `unexpected property "${(error.params as { additionalProperty: string }).additionalProperty}"`
      : (error.message ?? 'invalid')
  return { path: [...path, ...extra], message }
}
