/**
 * The database goes away under three running replicas, mid-run: new connections to it are
 * refused (`ALTER DATABASE … ALLOW_CONNECTIONS false`) and every backend of it is terminated,
 * again and again for a few seconds, then it comes back. (A real restart of the PostgreSQL
 * server would break every other test using it at the same time; to the replicas this is the
 * same thing: their connections die and new ones are refused.)
 *
 * During the outage every replica answers enqueues with a retryable 503 STORAGE_UNAVAILABLE and
 * writes nothing, and `/readyz` says not ready; each logs the outage once rather than an error per
 * call; afterwards all are ready again, take enqueues again, and every workflow completes.
 * (One server's `/readyz` and 503 are covered by H5's server test; this is the multi-replica,
 * mid-run version.)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { testPostgresUrl, usePostgresTestDatabase } from '@ratchet/storage/testing'
import { killChildServers } from './child-server'
import { until } from './helpers'
import {
  allFinished,
  completedTwiceOrNever,
  enqueueSpread,
  executionRecords,
  executionsOf,
  linesAtOrAbove,
  mixedBatches,
  outputProblems,
  readEffects,
  sendSignalsAndWakeups,
  startReplicas,
  timesRun,
  type Replica,
} from './replica-harness'
import { EFFECT_STEPS } from './fixtures/multi-replica-tasks'

const database = await usePostgresTestDatabase()

const MIX = { plain: 400, family: 150, napper: 300, signalled: 150, woken: 100 }
const OUTAGE_MS = 4_000
/** Longer than the outage: a replica's runs are not lost to it, only paused. */
const LEASE_MS = 15_000

const dir = mkdtempSync(join(tmpdir(), 'ratchet-pg-outage-'))
afterEach(() => killChildServers())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A connection to the server's maintenance database, which stays up: it drives the outage. */
async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: testPostgresUrl() })
  client.on('error', () => {})
  await client.connect()
  return client
}

async function readyz(replica: Replica): Promise<number> {
  try {
    return (await fetch(`${replica.url}/readyz`)).status
  } catch {
    return 0
  }
}

/** What an enqueue through the typed client came to: accepted, or the error's code and status. */
type Outcome =
  { ok: true; keys: string[] } | { ok: false; keys: string[]; code: string; status: number; data: unknown }

async function outcome(keys: string[], send: () => Promise<unknown>): Promise<Outcome> {
  try {
    await send()
    return { ok: true, keys }
  } catch (error) {
    const { code, status, data } = error as { code?: string; status?: number; data?: unknown }
    return { ok: false, keys, code: code ?? String(error), status: status ?? 0, data }
  }
}

describe.skipIf(!database.available)('a PostgreSQL outage under three replicas, mid-run', () => {
  it('enqueues get a retryable 503 and write nothing, /readyz is false, the outage is logged once; then everything completes', async () => {
    const effectsDir = join(dir, 'effects')
    mkdirSync(effectsDir)
    const replicas = await startReplicas(3, {
      databaseUrl: database.url,
      effectsDir,
      env: () => ({ RATCHET_LEASE_MS: String(LEASE_MS) }),
    })
    const enqueued = await enqueueSpread(replicas, mixedBatches(MIX, { batchSize: 100, tag: 'outage' }))
    let finished = false
    const sending = sendSignalsAndWakeups(replicas, enqueued, { stop: () => finished })

    // Mid-run: a quarter done.
    const total = executionsOf(enqueued)
    await until(
      async () =>
        (
          await database.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM executions WHERE status = 'completed'`,
          )
        )[0]!.n,
      (n) => n >= total / 4,
      120_000,
    )
    for (const replica of replicas) expect(await readyz(replica)).toBe(200)
    const logsBefore = replicas.map((r) => r.logs.length)

    // The outage: no new connections, and every backend of the database terminated, repeatedly.
    const control = await admin()
    const name = pg.escapeIdentifier(database.name)
    const outages: Outcome[][] = replicas.map(() => [])
    const readiness: number[][] = replicas.map(() => [])
    let n = 0
    try {
      await control.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
      const outageEnds = Date.now() + OUTAGE_MS
      const terminate = (async () => {
        while (Date.now() < outageEnds) {
          await control.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
            [database.name],
          )
          await delay(100)
        }
      })()
      // Meanwhile each replica is asked to enqueue (one, and a batch of three), and whether it is ready.
      await Promise.all(
        replicas.map(async (replica, r) => {
          await delay(300) // the first terminations have gone through
          while (Date.now() < outageEnds - 300) {
            const k = n++
            outages[r]!.push(
              await outcome([`outage-${k}`], () =>
                replica.client.tasks.plain.enqueue({ i: 100_000 + k }, { idempotencyKey: `outage-${k}` }),
              ),
            )
            const keys = [0, 1, 2].map((j) => `outage-${k}-${j}`)
            outages[r]!.push(
              await outcome(keys, () =>
                replica.client.tasks.plain.enqueueMany(
                  keys.map((key, j) => ({
                    input: { i: 200_000 + 3 * k + j },
                    options: { idempotencyKey: key },
                  })),
                ),
              ),
            )
            readiness[r]!.push(await readyz(replica))
            await delay(200)
          }
        }),
      )
      await terminate
    } finally {
      await control.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`)
      await control.end()
    }

    // During it: each replica refused enqueues with a retryable 503 and was not ready.
    for (const [r, results] of outages.entries()) {
      const refused = results.filter((o) => !o.ok)
      expect(refused.length, `replica r${r}`).toBeGreaterThan(0)
      for (const o of refused)
        expect(o).toMatchObject({ code: 'STORAGE_UNAVAILABLE', status: 503, data: { retryable: true } })
      expect(readiness[r], `replica r${r}`).toContain(503)
    }

    // After it: ready again, and enqueues are taken again on every replica.
    for (const replica of replicas)
      await until(
        () => readyz(replica),
        (status) => status === 200,
        60_000,
      )
    const after = await enqueueSpread(
      replicas,
      mixedBatches({ plain: 30, napper: 30 }, { first: 300_000, batchSize: 10 }),
    )

    // Nothing half-written: an enqueue that got a 503 left nothing; one that was taken is whole.
    const accepted = outages
      .flat()
      .filter((o) => o.ok)
      .flatMap((o) => o.keys)
    const refusedKeys = outages
      .flat()
      .filter((o) => !o.ok)
      .flatMap((o) => o.keys)
    const stored = await database.query<{ key: string }>(
      `SELECT idempotency_key AS key FROM executions WHERE idempotency_key LIKE 'outage-%'`,
    )
    expect(stored.map((s) => s.key).sort()).toEqual(accepted.sort())
    for (const key of refusedKeys.slice(0, 3)) {
      expect((await replicas[0]!.client.executions.list({ idempotencyKey: key })).items).toEqual([])
    }

    // Every workflow completes, exactly once, with the right output.
    await allFinished(database, total + accepted.length + executionsOf(after), 180_000)
    finished = true
    await sending
    const records = await executionRecords(database)
    expect(outputProblems(records)).toEqual([])
    expect(await completedTwiceOrNever(database)).toEqual([])
    // Every step's side effect happened; a step whose record could not be written during the
    // outage may have run again (at least once), but none of them more than twice.
    const effects = readEffects(effectsDir)
    const missing: string[] = []
    let again = 0
    for (const record of records) {
      for (const step of EFFECT_STEPS[record.task_id] ?? []) {
        const times = timesRun(effects, `${record.id} ${step}`)
        if (times === 0) missing.push(`${record.id} ${step}`)
        if (times > 1) again++
      }
    }
    expect(missing).toEqual([])
    console.log(
      `pg outage: ${outages.flat().length} enqueue calls during it (${accepted.length} executions taken before it bit), ` +
        `${again} step bodies ran again, failures ${records.reduce((s, r) => s + r.failures, 0)}, ` +
        `recoveries ${records.reduce((s, r) => s + r.recoveries, 0)}`,
    )

    // Each replica logged the outage, but not an error line per failed call.
    for (const [r, replica] of replicas.entries()) {
      const during = replica.logs.slice(logsBefore[r])
      const errors = linesAtOrAbove({ logs: during }, 50)
      expect(
        errors.length,
        `replica r${r} error lines: ${JSON.stringify(errors.slice(0, 5))}`,
      ).toBeLessThanOrEqual(1)
    }
    for (const replica of replicas) {
      replica.process.kill('SIGTERM')
      expect(await replica.exited).toBe(0)
    }
  }, 300_000)
})
