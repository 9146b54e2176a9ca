import { describe, expect, it } from 'vitest'
import {
  CANCELLABLE_STATUSES,
  EXECUTION_STATUSES,
  TERMINAL_STATUSES,
  TRANSITIONS,
  canTransition,
  isExecutionStatus,
  isTerminalStatus,
  type ExecutionStatus,
} from './state-machine'

/** Every allowed (from → to) pair, written out from the table in the file's header. */
const ALLOWED: [ExecutionStatus, ExecutionStatus][] = [
  ['queued', 'running'], // claim
  ['running', 'waiting'], // park
  ['waiting', 'queued'], // wake
  ['queued', 'timed_out'], // expire (deadline)
  ['waiting', 'timed_out'], // expire (deadline)
  ['running', 'completed'], // complete
  ['running', 'queued'], // retry, release, recover
  ['running', 'failed'], // fail, abandon
  ['running', 'timed_out'], // time_out
  ['queued', 'cancelled'], // cancel
  ['running', 'cancelled'],
  ['waiting', 'cancelled'],
  ['failed', 'queued'], // rerun (executions.retry)
  ['timed_out', 'queued'],
  ['cancelled', 'queued'],
]

describe('state machine', () => {
  it.each(EXECUTION_STATUSES.flatMap((from) => EXECUTION_STATUSES.map((to) => [from, to] as const)))(
    'canTransition(%s, %s)',
    (from, to) => {
      const allowed = ALLOWED.some(([f, t]) => f === from && t === to)
      expect(canTransition(from, to)).toBe(allowed)
    },
  )

  it('leaves a terminal status only by an explicit rerun, and never leaves completed', () => {
    for (const from of TERMINAL_STATUSES)
      for (const to of EXECUTION_STATUSES)
        expect(canTransition(from, to)).toBe(from !== 'completed' && to === 'queued')
  })

  it('has the documented transitions', () => {
    expect(TRANSITIONS.enqueue).toEqual({ from: [], to: 'queued' })
    expect(TRANSITIONS.recover).toEqual({ from: ['running'], to: 'queued' })
    expect(TRANSITIONS.abandon).toEqual({ from: ['running'], to: 'failed' })
    expect(TRANSITIONS.cancel).toEqual({ from: CANCELLABLE_STATUSES, to: 'cancelled' })
  })

  it('knows the terminal statuses', () => {
    expect(EXECUTION_STATUSES.filter(isTerminalStatus)).toEqual([
      'completed',
      'failed',
      'cancelled',
      'timed_out',
    ])
    expect(CANCELLABLE_STATUSES.some(isTerminalStatus)).toBe(false)
  })

  it('recognises status strings', () => {
    for (const status of EXECUTION_STATUSES) expect(isExecutionStatus(status)).toBe(true)
    for (const value of ['QUEUED', 'done', '', null, 1, undefined])
      expect(isExecutionStatus(value)).toBe(false)
  })
})
