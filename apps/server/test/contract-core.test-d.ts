/**
 * Compile-time check (npm run typecheck) that the public contract and the engine agree:
 * core and contract do not import each other, so this is what keeps them in step.
 */
import { expectTypeOf } from 'vitest'
import type {
  ExecutionStatus as ApiStatus,
  StoredError as ApiError,
  Issue as ApiIssue,
} from '@ratchet/contract'
import type {
  ExecutionStatus as CoreStatus,
  StoredError as CoreError,
  Issue as CoreIssue,
} from '@ratchet/core'

expectTypeOf<CoreStatus>().toEqualTypeOf<ApiStatus>()
expectTypeOf<CoreError>().toExtend<ApiError>()
expectTypeOf<CoreIssue>().toEqualTypeOf<ApiIssue>()
