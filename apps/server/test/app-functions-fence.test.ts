/**
 * An invocation that answers for a stale attempt is fenced. Replica A invokes the app; A is
 * frozen (SIGSTOP) while the app runs the step, its lease expires and replica B recovers the
 * execution and invokes the app again. The app then answers A's invocation first; A is thawed
 * and reads that answer, for an attempt that is no longer its own: nothing of it may be
 * recorded. B's invocation is answered next, and the execution completes with B's result.
 * Two real server processes on one PostgreSQL database, a real app process.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { until } from './helpers'
import { useServerlessHarness } from './serverless-harness'

const pg = await usePostgresTestDatabase()
const harness = useServerlessHarness()

/** Short leases so that B recovers A's run soon; a short poll, which lease recovery runs on. */
const replicaEnv = { RATCHET_LEASE_MS: '2000', RATCHET_POLL_INTERVAL_MS: '300', RATCHET_PG_POOL_SIZE: '3' }

describe.skipIf(!pg.available)('a stale invocation of an app-hosted function', () => {
  it('its answer, read after another replica recovered the run, records nothing; the run completes once', async () => {
    const a = await harness.start({ databaseUrl: pg.url, dropAfterMs: 0, env: replicaEnv })
    const { executionId } = await a.client.tasks.gated.enqueue({})
    const effects = () => harness.effects(executionId)
    const release = (n: number) => writeFileSync(join(harness.markers, `${executionId}.release-${n}`), '')
    await until(effects, (e) => e['started-1'] === 1, 20_000)

    a.server.process.kill('SIGSTOP')
    const b = await harness.startServer(a.port, { databaseUrl: pg.url, env: replicaEnv })
    // B recovers the run once A's lease has expired, and invokes the app: the step's second run.
    await until(effects, (e) => e['started-2'] === 1, 30_000)

    // The app answers A's invocation, which A has not read yet.
    release(1)
    await until(effects, (e) => e['finished-1'] === 1, 10_000)
    a.server.process.kill('SIGCONT')
    // A learns that its attempt is stale (from the answer's fenced write or its heartbeat) and stops it.
    await until(
      () => a.server.logs,
      (logs) => logs.some((l) => l.msg === 'attempt aborted' && l.executionId === executionId),
      15_000,
    )
    expect((await b.client.executions.steps(executionId)).items).toEqual([])

    release(2)
    const done = await b.client.executions.wait(executionId, { timeoutMs: 30_000 })
    expect(done).toMatchObject({ status: 'completed', output: { gate: 'run-2' }, failures: 0 })
    const steps = (await b.client.executions.steps(executionId)).items
    expect(steps.map((s) => s.name)).toEqual(['gate', 'after'])
    expect(steps[0]!.value).toBe('run-2')
    expect(effects()).toEqual({ 'started-1': 1, 'started-2': 1, 'finished-1': 1, 'finished-2': 1, after: 1 })
    // A ran nothing more: no third invocation, no error-level line on either replica.
    for (const server of [a.server, b.server])
      expect(server.logs.filter((l) => (l.level as number) >= 50)).toEqual([])
  }, 120_000)
})
