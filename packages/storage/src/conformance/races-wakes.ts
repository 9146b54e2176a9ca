import { expect } from 'vitest'
import { WAIT_FOREVER, type Storage } from '@ratchet/core'
import {
  RACE_ROUNDS,
  T0,
  childRecord,
  claimOne,
  mustGet,
  newExecution,
  race,
  runningOne,
  transitions,
  wakeupRecord,
  type ConformanceDeclarer,
} from './fixtures'

/**
 * Races of a wake against a park, over two connections (issue 12, item 9). A wake (a signal, a
 * child's end, a wakeup) that reaches a running execution marks it `wake_pending`, and its park
 * then requeues it; one that reaches it waiting requeues it. Under a single writer (SQLite) the
 * two never interleave and these pass trivially; under READ COMMITTED (PostgreSQL) a wake that
 * reads `running` and writes after the park committed is lost, and the execution waits forever.
 * Each test runs {@link RACE_ROUNDS} rounds of the same race, alternating which side starts first.
 */
export function wakeRaceConformance({ group, test }: ConformanceDeclarer): void {
  const HOUR = 3_600_000

  /**
   * The execution was woken exactly once by the race: it parked already woken (running → queued)
   * or parked and was then woken (running → waiting → queued); it is queued and claimable at
   * once, never left waiting.
   */
  async function expectWokenOnce(storage: Storage, id: string, taskId: string, round: number) {
    const where = `round ${round}: execution ${id}`
    expect((await transitions(storage, id)).slice(2), where).toBeOneOf([
      [['running', 'queued']],
      [
        ['running', 'waiting'],
        ['waiting', 'queued'],
      ],
    ])
    expect((await mustGet(storage, id)).status, where).toBe('queued')
    expect((await claimOne(storage, { taskIds: [taskId], now: T0 + 1 })).id, where).toBe(id)
  }

  group('races: wakes vs parks', () => {
    test('park vs signal: a signal racing the park of its run leaves the execution queued, never waiting on an unconsumed wake', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `park-signal-${round}` })
        const [parked, signalled] = await race(
          round,
          () => a.settle([{ transition: 'park', id: x.id, run: 1, runAt: WAIT_FOREVER }], T0 + 1),
          () => b.signal(x.id, 'go', String(round), T0 + 1),
        )
        expect(parked.applied, `round ${round}`).toEqual([true])
        expect(signalled, `round ${round}`).toMatchObject({ result: 'stored' })
        expect((await a.loadRunState(x.id)).inbox.map((s) => [s.name, s.payload])).toEqual([
          ['go', String(round)],
        ])
        await expectWokenOnce(a, x.id, x.taskId, round)
      }
    })

    test("park vs child end: a child ending while its parent parks leaves the parent queued, the child's end recorded", async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const parent = await runningOne(a, { taskId: `parent-${round}` })
        const child = newExecution({ taskId: `child-${round}`, parentId: parent.id, wakesParent: true })
        expect(
          await a.recordSteps(
            [{ executionId: parent.id, run: 1, step: childRecord(0, child.id), child }],
            T0,
          ),
        ).toEqual(['written'])
        await claimOne(b, { taskIds: [child.taskId] })
        // Every other round the settlement records the end in the parent's record itself.
        const withRecord = round % 4 < 2
        const [parked, ended] = await race(
          round,
          () => a.settle([{ transition: 'park', id: parent.id, run: 1, runAt: WAIT_FOREVER }], T0 + 1),
          () =>
            b.settle(
              [
                {
                  transition: 'complete',
                  id: child.id,
                  run: 1,
                  output: String(round),
                  wakeParentId: parent.id,
                  ...(withRecord
                    ? {
                        parentRecord: {
                          parentId: parent.id,
                          position: 0,
                          outcome: { status: 'done' as const, value: String(round) },
                        },
                      }
                    : {}),
                },
              ],
              T0 + 1,
            ),
        )
        expect([parked.applied, ended.applied], `round ${round}`).toEqual([[true], [true]])
        const state = await a.loadRunState(parent.id)
        if (withRecord) {
          expect(
            state.steps.map((s) => [s.status, s.value]),
            `round ${round}`,
          ).toEqual([['done', String(round)]])
          expect(state.children, `round ${round}`).toEqual([])
        } else {
          expect(state.children, `round ${round}`).toEqual([
            { id: child.id, status: 'completed', output: String(round), error: null },
          ])
        }
        await expectWokenOnce(a, parent.id, parent.taskId, round)
      }
    })

    test('park vs wakeup: a wakeup racing the park of its run completes the wait and leaves the execution queued', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `park-wakeup-${round}` })
        const key = `park-wakeup-${round}`
        expect(await a.recordSteps([{ executionId: x.id, run: 1, step: wakeupRecord(0, key) }], T0)).toEqual([
          'written',
        ])
        // Parked until the wait's timeout, an hour away.
        const [parked, woken] = await race(
          round,
          () => a.settle([{ transition: 'park', id: x.id, run: 1, runAt: T0 + HOUR }], T0 + 1),
          () => b.wakeup(key, { value: String(round) }, T0 + 1),
        )
        expect(parked.applied, `round ${round}`).toEqual([true])
        expect(woken, `round ${round}`).toEqual({ result: 'woken', executionId: x.id })
        expect(
          (await a.loadRunState(x.id)).steps.map((s) => [s.status, s.value]),
          `round ${round}`,
        ).toEqual([['done', String(round)]])
        await expectWokenOnce(a, x.id, x.taskId, round)
      }
    })

    test('concurrent signals: every one is stored with its own seq, and the waiting execution is woken exactly once', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `signals-${round}` })
        await a.settle([{ transition: 'park', id: x.id, run: 1, runAt: WAIT_FOREVER }], T0)
        const names = ['a1', 'b1', 'a2', 'b2']
        const [[a1, a2], [b1, b2]] = await race(
          round,
          () => Promise.all([a.signal(x.id, 'a1', '1', T0 + 1), a.signal(x.id, 'a2', '2', T0 + 1)]),
          () => Promise.all([b.signal(x.id, 'b1', '3', T0 + 1), b.signal(x.id, 'b2', '4', T0 + 1)]),
        )
        const seqs = [a1, b1, a2, b2].map((outcome, i) => {
          expect(outcome, `round ${round}: signal ${names[i]}`).toMatchObject({ result: 'stored' })
          return (outcome as { seq: number }).seq
        })
        expect(new Set(seqs).size, `round ${round}: distinct seqs`).toBe(4)
        const inbox = (await a.loadRunState(x.id)).inbox
        expect(
          inbox.map((s) => [s.seq, s.name]),
          `round ${round}`,
        ).toEqual(seqs.map((seq, i) => [seq, names[i]]).sort((p, q) => (p[0] as number) - (q[0] as number)))
        const history = await a.history(x.id)
        expect(history.filter((h) => h.event === 'signal').length, `round ${round}`).toBe(4)
        // Woken once: the first signal requeued it, the others found it queued.
        expect(await transitions(a, x.id), `round ${round}`).toEqual([
          [null, 'queued'],
          ['queued', 'running'],
          ['running', 'waiting'],
          ['waiting', 'queued'],
        ])
        expect((await claimOne(a, { taskIds: [x.taskId], now: T0 + 1 })).id).toBe(x.id)
      }
    })

    test('concurrent wakeups of one key: exactly one completes the wait, with its value, and wakes the execution once', async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `wakeups-${round}` })
        const key = `wakeups-${round}`
        await a.recordSteps([{ executionId: x.id, run: 1, step: wakeupRecord(0, key) }], T0)
        await a.settle([{ transition: 'park', id: x.id, run: 1, runAt: WAIT_FOREVER }], T0)
        const [fromA, fromB] = await race(
          round,
          () => a.wakeup(key, { value: '"a"' }, T0 + 1),
          () => b.wakeup(key, { value: '"b"' }, T0 + 1),
        )
        const results = [fromA.result, fromB.result]
        expect(results.sort(), `round ${round}`).toEqual(['finished', 'woken'])
        const winner = fromA.result === 'woken' ? '"a"' : '"b"'
        expect(
          (await a.loadRunState(x.id)).steps.map((s) => [s.status, s.value]),
          `round ${round}`,
        ).toEqual([['done', winner]])
        const history = await a.history(x.id)
        expect(history.filter((h) => h.event === 'wakeup').length, `round ${round}`).toBe(1)
        expect((await transitions(a, x.id)).slice(2), `round ${round}`).toEqual([
          ['running', 'waiting'],
          ['waiting', 'queued'],
        ])
      }
    })

    test("wakeup vs the run's own record of the wait (its timeout): exactly one of them completes it", async (open) => {
      const [a, b] = [await open(), await open()]
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const x = await runningOne(a, { taskId: `wakeup-record-${round}` })
        const key = `wakeup-record-${round}`
        await a.recordSteps([{ executionId: x.id, run: 1, step: wakeupRecord(0, key) }], T0)
        const timedOut = {
          ...wakeupRecord(0, key),
          status: 'failed' as const,
          error: '{"message":"timed out"}',
        }
        const [[recorded], woken] = await race(
          round,
          () => a.recordSteps([{ executionId: x.id, run: 1, step: timedOut }], T0 + 1),
          () => b.wakeup(key, { value: String(round) }, T0 + 1),
        )
        const where = `round ${round}: ${recorded} / ${woken.result}`
        expect([recorded, woken.result], where).toBeOneOf([
          ['written', 'finished'],
          ['superseded', 'woken'],
        ])
        const [step] = (await a.loadRunState(x.id)).steps
        expect([step?.status, step?.value], where).toEqual(
          recorded === 'written' ? ['failed', null] : ['done', String(round)],
        )
        const wakeups = (await a.history(x.id)).filter((h) => h.event === 'wakeup')
        expect(wakeups.length, where).toBe(recorded === 'written' ? 0 : 1)
      }
    })
  })
}
