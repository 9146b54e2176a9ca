import { describe, expect, it, onTestFinished } from 'vitest'
import type { Storage } from '@ratchet/core'
import { cancellationConformance } from './cancellation'
import { childrenConformance } from './children'
import { claimConformance } from './claims'
import { enqueueConformance, eventConformance } from './events-and-idempotency'
import type { ConformanceBody, ConformanceDeclarer } from './fixtures'
import { historyAndReadConformance } from './history-and-reads'
import { housekeepingConformance } from './housekeeping'
import { leaseConformance } from './leases-and-recovery'
import { fenceRaceConformance } from './races-fences'
import { timerRaceConformance } from './races-timers'
import { wakeRaceConformance } from './races-wakes'
import { continueConformance } from './retention-continue'
import { purgeConformance } from './retention-purge'
import { settleConformance } from './settle-and-fencing'
import { signalAndWakeConformance } from './signals-and-wakes'
import { statsConformance } from './stats'
import { stepConformance } from './steps-and-waits'
import { taskQueueConformance } from './task-queues'
import { debounceConformance } from './debounce'

/**
 * The conformance suite of the `Storage` port. Every adapter runs it from a ~10-line test
 * file; an adapter that cannot pass a test names it in `skip` with the reason, and the
 * reason is printed (a skip list naming a test that does not exist is an error).
 *
 * The tests live in one module per area (see `AREAS` below), each declaring its groups through
 * the {@link ConformanceDeclarer} this runner hands it; what they share is in `fixtures.ts`.
 */
export interface StorageConformanceOptions {
  /** Shown in the suite's title, e.g. `sqlite`. */
  name: string
  /** A storage over a fresh, empty, migrated database. Called once per test; the suite closes it. */
  makeStorage: () => Promise<Storage>
  /**
   * A second connection to the same database as `storage`, for the tests that race two
   * connections (the `races` groups). Without it, those run both sides over the one storage.
   */
  openSecondConnection?: (storage: Storage) => Promise<Storage>
  /** Tests this adapter does not run, each group with its reason. */
  skip?: { reason: string; tests: string[] }[]
}

/** The areas of the suite, in the order they run. */
const AREAS: ((declarer: ConformanceDeclarer) => void)[] = [
  enqueueConformance,
  eventConformance,
  claimConformance,
  taskQueueConformance,
  debounceConformance,
  housekeepingConformance,
  settleConformance,
  leaseConformance,
  signalAndWakeConformance,
  stepConformance,
  childrenConformance,
  cancellationConformance,
  historyAndReadConformance,
  statsConformance,
  purgeConformance,
  continueConformance,
  capabilityConformance,
  wakeRaceConformance,
  fenceRaceConformance,
  timerRaceConformance,
]

export function runStorageConformance(options: StorageConformanceOptions): void {
  const skipped = new Map<string, string>()
  for (const group of options.skip ?? []) {
    if (group.reason.trim() === '') throw new Error(`${options.name}: every skip needs a reason`)
    for (const title of group.tests) skipped.set(title, group.reason)
  }
  const groups: { name: string; cases: { title: string; body: ConformanceBody }[] }[] = []
  const declared = new Set<string>()

  // Tests are gathered first, so the skip list is checked before anything is declared.
  const declarer: ConformanceDeclarer = {
    group(name, gather) {
      groups.push({ name, cases: [] })
      gather()
    },
    test(title, body) {
      if (declared.has(title)) throw new Error(`duplicate conformance test title: ${title}`)
      if (groups.length === 0) throw new Error(`conformance test outside a group: ${title}`)
      declared.add(title)
      groups.at(-1)!.cases.push({ title, body })
    },
  }
  for (const area of AREAS) area(declarer)

  for (const title of skipped.keys()) {
    if (!declared.has(title))
      throw new Error(`${options.name}: the skip list names an unknown conformance test "${title}"`)
  }

  /** Declares one test, skipped (with its reason printed) when the adapter lists it. */
  function declare(title: string, body: ConformanceBody): void {
    const reason = skipped.get(title)
    if (reason !== undefined)
      console.warn(`[storage conformance: ${options.name}] skipped "${title}": ${reason}`)
    it.skipIf(reason !== undefined)(
      reason === undefined ? title : `${title} (skipped: ${reason})`,
      async () => {
        const opened: Storage[] = []
        onTestFinished(async () => {
          for (const storage of opened.reverse()) await storage.close()
        })
        let first: Storage | undefined
        await body(async () => {
          // The first call makes the test's database; later calls connect to it again.
          if (!first) {
            first = await options.makeStorage()
            opened.push(first)
            return first
          }
          if (!options.openSecondConnection) return first
          const second = await options.openSecondConnection(first)
          opened.push(second)
          return second
        })
      },
    )
  }

  describe(`storage conformance: ${options.name}`, () => {
    for (const { name, cases } of groups) {
      describe(name, () => {
        for (const { title, body } of cases) declare(title, body)
      })
    }
  })
}

/** What the adapter declares about itself agrees with what it has. */
function capabilityConformance({ group, test }: ConformanceDeclarer): void {
  group('capabilities', () => {
    test('notifications are present exactly when capabilities.listenNotify says so', async (open) => {
      const storage = await open()
      expect(storage.notifications !== undefined).toBe(storage.capabilities.listenNotify)
      if (storage.notifications) {
        const off = [
          storage.notifications.onWake(() => {}),
          storage.notifications.onChange(() => {}),
          storage.notifications.onConnection(() => {}),
        ]
        for (const unsubscribe of off) expect(unsubscribe).toBeTypeOf('function')
        for (const unsubscribe of off) unsubscribe()
      }
    })
  })
}
