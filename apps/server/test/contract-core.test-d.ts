/**
 * Compile-time check (npm run typecheck) that the public contract and the engine agree:
 * core and contract do not import each other, so this is what keeps them in step.
 */
import { expectTypeOf } from 'vitest'
import type {
  ExecutionStatus as ApiStatus,
  StoredError as ApiError,
  Issue as ApiIssue,
  Step as ApiStep,
  BulkResult as ApiBulkResult,
  ChangeEvent as ApiChangeEvent,
} from '@ratchet/contract'
import type {
  ExecutionStatus as CoreStatus,
  StoredError as CoreError,
  Issue as CoreIssue,
  StepKind as CoreStepKind,
  StepStatus as CoreStepStatus,
  BulkResult as CoreBulkResult,
  ExecutionChangeEvent as CoreChangeEvent,
} from '@ratchet/core'

expectTypeOf<CoreStatus>().toEqualTypeOf<ApiStatus>()
expectTypeOf<CoreError>().toExtend<ApiError>()
expectTypeOf<CoreIssue>().toEqualTypeOf<ApiIssue>()
expectTypeOf<CoreStepKind>().toEqualTypeOf<ApiStep['kind']>()
expectTypeOf<CoreStepStatus>().toEqualTypeOf<ApiStep['status']>()
expectTypeOf<CoreBulkResult>().toExtend<ApiBulkResult>()
// A change event is the core's with its time as a Date (the cursor, the seq and the rest as they are).
expectTypeOf<Omit<CoreChangeEvent, 'at'>>().toEqualTypeOf<Omit<ApiChangeEvent, 'at'>>()
