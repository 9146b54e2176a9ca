/**
 * Three real server processes (replicas) on one PostgreSQL database run 10,000 executions of
 * mixed shapes — plain steps, children (ctx.all of ctx.child), short durable sleeps, signals
 * and wakeups sent through the API while they wait — enqueued through the typed client across
 * the three. None may be lost, none completed twice, every step's side effect (a line in a
 * file outside the servers) must have happened exactly once, and all three must have worked.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { killChildServers } from './child-server'
import {
  allFinished,
  claimsPerWorker,
  cpuSeconds,
  completedTwiceOrNever,
  effectProblems,
  enqueueSpread,
  executionRecords,
  executionsOf,
  linesAtOrAbove,
  mixedBatches,
  outputProblems,
  readEffects,
  sendSignalsAndWakeups,
  startReplicas,
} from './replica-harness'

const pg = await usePostgresTestDatabase()

/** Top-level executions; with the children of `family`, 13,000 in all. */
const MIX = { plain: 4_000, family: 1_500, napper: 2_000, signalled: 1_500, woken: 1_000 }
const TOTAL = Object.values(MIX).reduce((sum, n) => sum + n, 0)

const dir = mkdtempSync(join(tmpdir(), 'ratchet-replicas-'))
afterEach(() => killChildServers())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(!pg.available)('three replicas on one PostgreSQL database', () => {
  it(`${TOTAL} executions of mixed shapes across 3 replicas: none lost, none completed twice, each step's side effect once, work on all three`, async () => {
    const effectsDir = join(dir, 'effects')
    mkdirSync(effectsDir)
    const replicas = await startReplicas(3, { databaseUrl: pg.url, effectsDir })

    const startedAt = Date.now()
    const enqueued = await enqueueSpread(replicas, mixedBatches(MIX, { tag: 'replicas' }))
    const enqueuedMs = Date.now() - startedAt
    expect(enqueued).toHaveLength(TOTAL)
    expect(new Set(enqueued.map((e) => e.id)).size).toBe(TOTAL)

    // A third of the signals go out at once (into the inbox), the rest once seen waiting.
    const expected = executionsOf(enqueued)
    let finished = false
    const sending = sendSignalsAndWakeups(replicas, enqueued, {
      early: Math.floor(MIX.signalled / 3),
      stop: () => finished,
    })
    try {
      await allFinished(pg, expected, 420_000)
    } finally {
      finished = true
    }
    expect(await sending).toEqual({ signals: MIX.signalled, wakeups: MIX.woken })
    const finishedMs = Date.now() - startedAt

    // Nothing lost: every enqueued execution and every child is there, completed, right output.
    const records = await executionRecords(pg)
    expect(records).toHaveLength(expected)
    const byId = new Map(records.map((r) => [r.id, r]))
    expect(enqueued.filter((e) => byId.get(e.id)?.status !== 'completed')).toEqual([])
    expect(records.filter((r) => r.task_id === 'leaf' && r.parent_id === null)).toEqual([])
    expect(outputProblems(records)).toEqual([])
    // Nothing completed twice: one transition to completed in each history.
    expect(await completedTwiceOrNever(pg)).toEqual([])
    // Every step's side effect exactly once (no crash here, so no step ran twice).
    expect(effectProblems(records, readEffects(effectsDir))).toEqual([])
    // Nothing failed, nothing was recovered.
    expect(records.filter((r) => r.failures !== 0 || r.recoveries !== 0)).toEqual([])

    // Work spread over all three: each replica's worker claimed a fair share.
    const claims = await claimsPerWorker(pg)
    const totalClaims = [...claims.values()].reduce((sum, n) => sum + n, 0)
    console.log(
      `replicas: ${expected} executions (${TOTAL} enqueued in ${enqueuedMs} ms) finished in ${finishedMs} ms; ` +
        `claims per worker: ${[...claims.values()].join(', ')}; ` +
        `CPU s per replica: ${replicas.map((r) => cpuSeconds(r.process.pid)).join(', ')}`,
    )
    expect(claims.size).toBe(3)
    for (const n of claims.values()) expect(n).toBeGreaterThan(totalClaims / 10)

    // Through the API of each replica, the same story for an execution of every shape.
    for (const [k, replica] of replicas.entries()) {
      for (const taskId of Object.keys(MIX)) {
        const sample = enqueued.filter((e) => e.taskId === taskId)[k]!
        const execution = await replica.client.executions.get(sample.id)
        expect(execution).toMatchObject({ status: 'completed', attempt: 1, failures: 0 })
        const history = await replica.client.executions.history(sample.id, { statusOnly: true })
        expect(history.items.filter((h) => h.to === 'completed')).toHaveLength(1)
      }
    }

    // No replica logged an error, and each stops cleanly.
    for (const replica of replicas) expect(linesAtOrAbove(replica, 50)).toEqual([])
    for (const replica of replicas) replica.process.kill('SIGTERM')
    for (const replica of replicas) expect(await replica.exited).toBe(0)
  }, 600_000)
})
