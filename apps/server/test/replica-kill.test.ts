/**
 * SIGKILL one of three replicas on one PostgreSQL database mid-run. The victim is made to hold
 * runs at that moment: once the test creates a file, its `relay` executions hang in their
 * second step (after the first was recorded) until every slot of the victim holds one. Those
 * runs must be picked up by the other two once their leases expire — not before — nothing may
 * be lost, the recorded first steps must not run again, and the lost runs must count as
 * recoveries, not failures (relay allows a single attempt).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { killChildServers } from './child-server'
import { until } from './helpers'
import {
  allFinished,
  claimsPerWorker,
  completedTwiceOrNever,
  effectProblems,
  enqueueSpread,
  executionRecords,
  executionsOf,
  linesAtOrAbove,
  mixedBatches,
  outputProblems,
  readEffects,
  startReplicas,
  timesRun,
} from './replica-harness'

const pg = await usePostgresTestDatabase()

const MIX = { plain: 600, family: 200, napper: 300, relay: 900 }
/** The victim's slots: it holds exactly this many hung runs when it is killed. */
const VICTIM_SLOTS = 6
const LEASE_MS = 3_000

const dir = mkdtempSync(join(tmpdir(), 'ratchet-replica-kill-'))
afterEach(() => killChildServers())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []

describe.skipIf(!pg.available)('a replica SIGKILLed mid-run', () => {
  it('its runs are recovered by the others after their leases expire: nothing lost, finished steps not run again, no failure counted', async () => {
    const effectsDir = join(dir, 'effects')
    mkdirSync(effectsDir)
    const hangFile = join(dir, 'hang')
    const replicas = await startReplicas(3, {
      databaseUrl: pg.url,
      effectsDir,
      env: (i) => ({
        RATCHET_LEASE_MS: String(LEASE_MS),
        RATCHET_CONCURRENCY: i === 2 ? String(VICTIM_SLOTS) : '10',
        ...(i === 2 ? { RATCHET_TEST_HANG_FILE: hangFile } : {}),
      }),
    })
    const victim = replicas[2]!
    const survivors = replicas.slice(0, 2)

    const enqueued = await enqueueSpread(replicas, mixedBatches(MIX, { batchSize: 100, napMs: [100, 600] }))
    const expected = executionsOf(enqueued)

    // The victim does real work first; then its relays start to hang until all its slots do.
    await until(
      () => lines(join(effectsDir, `${victim.name}.log`)).length,
      (n) => n >= 100,
      60_000,
    )
    writeFileSync(hangFile, '')
    const held = await until(
      () => lines(`${hangFile}.held`),
      (ids) => ids.length === VICTIM_SLOTS,
      60_000,
    )
    // Each held run recorded its first step and is still leased: nobody recovered it.
    const before = await pg.query<{ id: string; status: string; runs: number; recovered: number }>(
      `SELECT e.id::text, e.status, e.attempt AS runs,
              (SELECT count(*)::int FROM execution_history h
                WHERE h.execution_id = e.id AND h.detail::json->>'transition' = 'recover') AS recovered
         FROM executions e WHERE e.id = ANY($1::uuid[])`,
      [held],
    )
    expect(before).toHaveLength(VICTIM_SLOTS)
    for (const row of before) expect(row).toMatchObject({ status: 'running', runs: 1, recovered: 0 })
    const effectsBefore = readEffects(effectsDir)
    for (const id of held) {
      expect(effectsBefore.get(`${id} one`)).toEqual(new Map([[victim.name, 1]]))
      expect(timesRun(effectsBefore, `${id} two`)).toBe(0)
    }
    const unfinished = (
      await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM executions WHERE status <> 'completed'`)
    )[0]!.n
    expect(unfinished).toBeGreaterThan(VICTIM_SLOTS) // mid-run: the others still have work

    victim.process.kill('SIGKILL')
    await victim.exited

    await allFinished(pg, expected, 180_000)

    const records = await executionRecords(pg)
    expect(records).toHaveLength(expected)
    const byId = new Map(records.map((r) => [r.id, r]))
    expect(enqueued.filter((e) => byId.get(e.id)?.status !== 'completed')).toEqual([])
    expect(outputProblems(records)).toEqual([])
    expect(await completedTwiceOrNever(pg)).toEqual([])
    // Every step's side effect once: the held runs' recorded first step did not run again, and
    // no run but the held ones was lost (the victim held nothing else).
    const effects = readEffects(effectsDir)
    expect(effectProblems(records, effects)).toEqual([])

    // The held runs: recovered once each (a run lost to a crash), by a survivor, which ran the
    // second step; attempt 1 still (relay allows one), no failure.
    const workers = await claimsPerWorker(pg)
    expect(workers.size).toBe(3)
    for (const id of held) {
      const client = survivors[0]!.client
      expect(await client.executions.get(id)).toMatchObject({
        status: 'completed',
        runs: 2,
        attempt: 1,
        failures: 0,
        maxAttempts: 1,
      })
      const history = (await client.executions.history(id, { statusOnly: true })).items
      expect(history.map((h) => `${h.from ?? '-'}>${h.to}#${h.run}`)).toEqual([
        '->queued#0',
        'queued>running#1',
        'running>queued#1',
        'queued>running#2',
        'running>completed#2',
      ])
      expect(history[2]?.detail).toMatchObject({
        transition: 'recover',
        error: { code: 'LEASE_EXPIRED' },
        recoveries: 1,
      })
      const [first, second] = [history[1]?.detail, history[3]?.detail] as { worker: string }[]
      expect(second!.worker).not.toBe(first!.worker)
      expect(effects.get(`${id} one`)).toEqual(new Map([[victim.name, 1]]))
      expect([...effects.get(`${id} two`)!.keys()]).not.toContain(victim.name)
    }
    // Only the held runs were lost; nothing else failed or was recovered.
    expect(records.filter((r) => r.failures !== 0)).toEqual([])
    const recovered = await pg.query<{ id: string }>(
      `SELECT DISTINCT execution_id::text AS id FROM execution_history WHERE detail::json->>'transition' = 'recover'`,
    )
    expect(recovered.map((r) => r.id).sort()).toEqual([...held].sort())
    const recoveryLogs = survivors.flatMap((s) =>
      s.logs.filter((l) => l.msg === 'recovered a run lost to a crash (lease expired)'),
    )
    expect(recoveryLogs.map((l) => l.executionId).sort()).toEqual([...held].sort())
    for (const survivor of survivors) {
      expect(linesAtOrAbove(survivor, 50)).toEqual([])
      survivor.process.kill('SIGTERM')
      expect(await survivor.exited).toBe(0)
    }
  }, 300_000)
})
