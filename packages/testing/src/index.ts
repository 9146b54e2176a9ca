export { createTestEngine, TestEngine } from './test-engine'
export type { TestEngineOptions, RunUntilSettledOptions, RunOptions, TestEnqueueResult } from './test-engine'
export type { StepRecord } from './step-records'
