import { expect } from 'vitest'
import {
  ConflictError,
  WAIT_FOREVER,
  newExecutionId,
  type ExecutionStatus,
  type Settlement,
} from '@ratchet/core'
import {
  LEASE_MS,
  RACE_ROUNDS,
  T0,
  WORKER_A,
  WORKER_B,
  claimRequest,
  mustGet,
  newExecution,
  race,
  recoverRequest,
  runningOne,
  stepRecord,
  storedError,
  transitions,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * Races of writers that must exclude each other, over two connections (issue 12, item 9): two
 * claimers, a run's fenced writes against the recovery of its expired lease or a cancel, and two
 * callers of one idempotency key or publish id. Trivial under a single writer (SQLite); under
 * READ COMMITTED (PostgreSQL) each needs one statement or a row lock, and these catch the
 * read-then-write that does not have it. Each test runs {@link RACE_ROUNDS} rounds.
 */
export function fenceRaceConformance({ group, test }: ConformanceDeclarer): void {
  group('races: fences and exclusive writes', () => {
    test('concurrent claims: no execution is claimed twice, and together the two claimers take every due one', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const taskIds = [`claims-${round}-x`, `claims-${round}-y`]
        await a.enqueue(
          Array.from({ length: 10 }, (_, i) => newExecution({ taskId: taskIds[i % 2]!, priority: i % 3 })),
          T0,
        )
        // Even rounds: each may take them all; odd rounds: their limits add up to exactly the ten.
        const [limitA, limitB] = round % 2 === 0 ? [10, 10] : [4, 6]
        const [byA, byB] = await race(
          round,
          () => a.claim(claimRequest({ owner: WORKER_A, taskIds, limit: limitA })),
          () => b.claim(claimRequest({ owner: WORKER_B, taskIds, limit: limitB })),
        )
        const taken = new Map<string, string>()
        for (const [owner, rows] of [
          [WORKER_A, byA.claimed],
          [WORKER_B, byB.claimed],
        ] as const) {
          for (const row of rows) {
            expect(taken.get(row.id), `round ${round}: ${row.id} claimed twice`).toBeUndefined()
            taken.set(row.id, owner)
            expect(row, `round ${round}`).toMatchObject({ status: 'running', runs: 1, leaseOwner: owner })
          }
        }
        expect(taken.size, `round ${round}: claimed by ${limitA}/${limitB}`).toBe(10)
        for (const [id, owner] of taken) {
          expect(await mustGet(a, id), `round ${round}`).toMatchObject({ leaseOwner: owner, runs: 1 })
          expect(await transitions(a, id), `round ${round}`).toEqual([
            [null, 'queued'],
            ['queued', 'running'],
          ])
        }
      }
    })

    const settlements: { settlement: (id: string) => Settlement; status: ExecutionStatus }[] = [
      { settlement: (id) => ({ transition: 'complete', id, run: 1, output: '1' }), status: 'completed' },
      { settlement: (id) => ({ transition: 'park', id, run: 1, runAt: WAIT_FOREVER }), status: 'waiting' },
      {
        settlement: (id) => ({ transition: 'retry', id, run: 1, error: storedError('r'), delayMs: 0 }),
        status: 'queued',
      },
      { settlement: (id) => ({ transition: 'fail', id, run: 1, error: storedError('f') }), status: 'failed' },
      {
        settlement: (id) => ({ transition: 'release', id, run: 1, error: storedError('s') }),
        status: 'queued',
      },
    ]

    test('fence vs recovery: a settlement racing the recovery of its expired lease, exactly one of them is written', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const { settlement, status } = settlements[round % settlements.length]!
        const x = await runningOne(a, { taskId: `fence-${round}` })
        const now = T0 + LEASE_MS + 1
        const [settled, recovered] = await race(
          round,
          () => a.settle([settlement(x.id)], now),
          () => b.recoverLeases(recoverRequest({ now })),
        )
        const where = `round ${round}: ${settlement(x.id).transition}`
        const recoveredX = recovered.filter((r) => r.id === x.id)
        expect([settled.applied[0], recoveredX.length === 1], where).toBeOneOf([
          [true, false],
          [false, true],
        ])
        const history = await a.history(x.id, { statusOnly: true })
        expect(history.length, where).toBe(3)
        const last = JSON.parse(history[2]!.detail ?? '{}') as { transition?: string }
        if (settled.applied[0]) {
          expect(await mustGet(a, x.id), where).toMatchObject({ status, recoveries: 0 })
          expect(last.transition, where).not.toBe('recover')
        } else {
          expect(await mustGet(a, x.id), where).toMatchObject({
            status: 'queued',
            recoveries: 1,
            failures: 0,
          })
          expect(last.transition, where).toBe('recover')
        }
      }
    })

    test('fence vs recovery: a step record racing the recovery is written and counted as progress, or stale and absent', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `record-${round}` })
        const now = T0 + LEASE_MS + 1
        const [[result], recovered] = await race(
          round,
          () => a.recordSteps([{ executionId: x.id, run: 1, step: stepRecord(0) }], now),
          () => b.recoverLeases(recoverRequest({ now })),
        )
        const where = `round ${round}: ${result}`
        // The lease expired either way: the run is recovered.
        const recoveredX = recovered.find((r) => r.id === x.id)
        expect(recoveredX, where).toBeDefined()
        expect(result, where).toBeOneOf(['written', 'stale'])
        const steps = (await a.loadRunState(x.id)).steps
        if (result === 'written') {
          // Written before the recovery: the lost run made progress.
          expect(
            steps.map((s) => s.position),
            where,
          ).toEqual([0])
          expect(recoveredX, where).toMatchObject({ progressed: true, recoveries: 1 })
        } else {
          // Fenced out by the recovery: nothing of the lost run lands after it.
          expect(steps, where).toEqual([])
          expect(recoveredX, where).toMatchObject({ progressed: false })
        }
      }
    })

    test('cancel vs settle: exactly one of them ends the running execution', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `cancel-${round}` })
        const [settled, cancelled] = await race(
          round,
          () => a.settle([{ transition: 'complete', id: x.id, run: 1, output: '1' }], T0 + 1),
          () => b.cancel(x.id, T0 + 1, storedError('cancelled')),
        )
        const where = `round ${round}`
        expect([settled.applied[0], cancelled?.cancelledFrom], where).toBeOneOf([
          [true, null],
          [false, 'running'],
        ])
        const final = settled.applied[0] ? 'completed' : 'cancelled'
        expect(await mustGet(a, x.id), where).toMatchObject({ status: final, leaseOwner: null })
        expect(await transitions(a, x.id), where).toEqual([
          [null, 'queued'],
          ['queued', 'running'],
          ['running', final],
        ])
      }
    })

    test('concurrent enqueues of one idempotency key: one execution; the same input returns it to both, another input conflicts', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const taskId = `idem-${round}`
        const same = round % 2 === 0
        const first = newExecution({ taskId, idempotencyKey: 'k', label: 'one' })
        const second = newExecution({ taskId, idempotencyKey: 'k', label: same ? 'one' : 'two' })
        const [fromA, fromB] = await race(
          round,
          () => outcomeOf(a.enqueue([first], T0)),
          () => outcomeOf(b.enqueue([second], T0)),
        )
        const where = `round ${round} (${same ? 'same input' : 'another input'})`
        const listed = await a.list({ taskId, limit: 10 })
        expect(listed.length, where).toBe(1)
        const winner = listed[0]!.id
        expect(await a.history(winner), where).toHaveLength(1)
        if (same) {
          const outcomes = [fromA, fromB].map((r) => r.value?.[0])
          expect(outcomes.map((o) => [o?.row.id, o?.created]).sort(), where).toEqual(
            [
              [winner, false],
              [winner, true],
            ].sort(),
          )
        } else {
          const [won, lost] = fromA.value ? [fromA, fromB] : [fromB, fromA]
          expect(won.value?.[0], where).toMatchObject({ created: true, row: { id: winner } })
          expect(lost.error, where).toBeInstanceOf(ConflictError)
        }
      }
    })

    test('concurrent publishes of one publishId: one event and its executions; the other call is a repeat that writes nothing', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const taskId = `publish-${round}`
        const publish = (storage: typeof a) => {
          const started = newExecution({ taskId })
          const event = {
            id: newExecutionId(T0),
            type: `race.${round}`,
            payload: `{"round":${round}}`,
            createdAt: T0,
            executionIds: JSON.stringify([started.id]),
            publishId: `publish-${round}`,
          }
          return storage.publishEvent(event, [started], T0)
        }
        const [fromA, fromB] = await race(
          round,
          () => publish(a),
          () => publish(b),
        )
        const where = `round ${round}`
        expect([fromA.repeat, fromB.repeat].sort(), where).toEqual([false, true])
        const [won, repeat] = fromA.repeat ? [fromB, fromA] : [fromA, fromB]
        expect(repeat, where).toMatchObject({ outcomes: [], event: { id: won.event.id } })
        expect(await a.listEvents({ type: `race.${round}`, limit: 10 }), where).toEqual([won.event])
        expect(
          (await a.list({ taskId, limit: 10 })).map((r) => r.id),
          where,
        ).toEqual(won.outcomes.map((o) => o.row.id))
      }
    })

    test('lease extension vs recovery: the run keeps its lease or is recovered, and extendLeases says which', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `extend-${round}` })
        // The lease has just expired: the heartbeat comes late, as the recoverer passes.
        const now = T0 + LEASE_MS + 1
        const [lost, recovered] = await race(
          round,
          () => a.extendLeases(WORKER_A, [{ id: x.id, run: 1 }], now, LEASE_MS),
          () => b.recoverLeases(recoverRequest({ now })),
        )
        const where = `round ${round}`
        const recoveredX = recovered.some((r) => r.id === x.id)
        expect(lost, where).toEqual(recoveredX ? [{ id: x.id, run: 1 }] : [])
        expect(await mustGet(a, x.id), where).toMatchObject(
          recoveredX
            ? { status: 'queued', leaseOwner: null, recoveries: 1 }
            : { status: 'running', leaseOwner: WORKER_A, leaseExpiresAt: now + LEASE_MS },
        )
      }
    })
  })
}

/** A promise's value or error, without rejecting. */
async function outcomeOf<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise }
  } catch (error) {
    return { error }
  }
}
