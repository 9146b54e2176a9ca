import { expect } from 'vitest'
import type { HousekeepOutcome } from '@ratchet/core'
import {
  RACE_ROUNDS,
  T0,
  claimRequest,
  enqueueOne,
  mustGet,
  race,
  runningOne,
  transitions,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * Races of `housekeep` (which any replica may run) against the other writers, over two
 * connections: a signal waking the same waiter, another housekeeper, and a claim of an
 * execution past its deadline. Each change must be made once, by one of them. Each test runs
 * {@link RACE_ROUNDS} rounds.
 */
export function timerRaceConformance({ group, test }: ConformanceDeclarer): void {
  /** The ids a housekeeping call changed; a busy call must have changed nothing. */
  const changedIds = (outcome: HousekeepOutcome, where: string) => {
    if (outcome.busy) expect(outcome.changed, `${where}: a busy housekeep changes nothing`).toEqual([])
    return outcome.changed.map((c) => c.id)
  }

  group('races: housekeeping', () => {
    test('housekeep vs signal: a waiter whose time came, woken by both at once, is woken exactly once', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `due-signal-${round}` })
        await a.settle([{ transition: 'park', id: x.id, run: 1, runAt: T0 + 100 }], T0)
        const [housekept, signalled] = await race(
          round,
          () => a.housekeep(T0 + 100, 100),
          () => b.signal(x.id, 'go', String(round), T0 + 100),
        )
        const where = `round ${round}`
        expect(signalled, where).toMatchObject({ result: 'stored' })
        expect((await transitions(a, x.id)).slice(2), where).toEqual([
          ['running', 'waiting'],
          ['waiting', 'queued'],
        ])
        // The one wake is housekeep's (reason `due`) exactly when housekeep reports it.
        const wake = (await a.history(x.id, { statusOnly: true })).at(-1)!
        const byTimer = (JSON.parse(wake.detail!) as { reason?: string }).reason === 'due'
        expect(changedIds(housekept, where).includes(x.id), where).toBe(byTimer)
        expect((await mustGet(a, x.id)).status, where).toBe('queued')
      }
    })

    test('concurrent housekeeping: every due change is made once and reported by exactly one caller', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const now = T0 + 1_000 * (round + 1)
        const sleepers: string[] = []
        for (let i = 0; i < 3; i++) {
          const row = await runningOne(a, { taskId: `sleep-${round}-${i}` }, { now: now - 100 })
          await a.settle([{ transition: 'park', id: row.id, run: 1, runAt: now }], now - 100)
          sleepers.push(row.id)
        }
        const late: string[] = []
        for (let i = 0; i < 2; i++) {
          const row = await enqueueOne(a, { taskId: `late-${round}`, runAt: now + 10_000, deadlineAt: now })
          late.push(row.id)
        }
        const [fromA, fromB] = await race(
          round,
          () => a.housekeep(now, 100),
          () => b.housekeep(now, 100),
        )
        const where = `round ${round}`
        const reported = [...changedIds(fromA, where), ...changedIds(fromB, where)]
        expect([...reported].sort(), where).toEqual([...sleepers, ...late].sort())
        for (const id of sleepers) {
          expect((await transitions(a, id)).slice(3), where).toEqual([['waiting', 'queued']])
          expect((await mustGet(a, id)).status, where).toBe('queued')
        }
        for (const id of late) {
          expect((await transitions(a, id)).slice(1), where).toEqual([['queued', 'timed_out']])
          expect(await mustGet(a, id), where).toMatchObject({ status: 'timed_out', failures: 1 })
        }
      }
    })

    test('claim vs housekeep: a due execution past its deadline is either claimed or timed out, never both', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const taskId = `deadline-claim-${round}`
        const x = await enqueueOne(a, { taskId, deadlineAt: T0 + 50 })
        const [claim, housekept] = await race(
          round,
          () => a.claim(claimRequest({ taskIds: [taskId], now: T0 + 50 })),
          () => b.housekeep(T0 + 50, 100),
        )
        const where = `round ${round}`
        const claimed = claim.claimed.map((r) => r.id).includes(x.id)
        const expired = changedIds(housekept, where).includes(x.id)
        expect([claimed, expired], where).toBeOneOf([
          [true, false],
          [false, true],
        ])
        const final = claimed ? 'running' : 'timed_out'
        expect((await mustGet(a, x.id)).status, where).toBe(final)
        expect(await transitions(a, x.id), where).toEqual([
          [null, 'queued'],
          ['queued', final],
        ])
      }
    })
  })
}
