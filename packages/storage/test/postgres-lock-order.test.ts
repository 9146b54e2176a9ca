import pgDriver from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openPostgresStorage, type PostgresStorage } from '@ratchet/storage'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { newExecution } from '../src/conformance/fixtures'

// The adapter's lock order: rows of `executions` are locked in id order, or not waited for.
// Each test holds locks from a second connection the way one of the executor's own concurrent
// writes does, then checks the adapter's call neither deadlocks with it nor waits it out.
const pg = await usePostgresTestDatabase()

describe.skipIf(!pg.available)('PostgreSQL lock order', () => {
  let a: PostgresStorage
  let b: PostgresStorage
  let other: pgDriver.Client
  beforeEach(async () => {
    await pg.reset()
    a = await openPostgresStorage({ url: pg.url })
    b = await openPostgresStorage({ url: pg.url })
    other = new pgDriver.Client({ connectionString: pg.url })
    await other.connect()
    // This session finds a deadlock before the adapter's (1 s) would, so it is the victim:
    // a deadlock fails the test instead of being retried away by the adapter.
    await other.query(`SET deadlock_timeout = '20ms'; SET lock_timeout = '5s'`)
  })
  afterEach(async () => {
    await other.end()
    await a.close()
    await b.close()
  })

  const lock = (id: string) => other.query('SELECT 1 FROM executions WHERE id = $1 FOR NO KEY UPDATE', [id])
  const waitingOnLocks = async () =>
    (
      await pg.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      )
    )[0]!.n

  /** A parent and its child, both running under a; the parent's id sorts first. */
  async function family(now: number) {
    const [parent] = await a.enqueue([newExecution({ label: 'parent', runAt: now })], now)
    const id = parent!.row.id
    const [child] = await a.enqueue(
      [newExecution({ label: 'child', runAt: now, parentId: id, rootId: id, wakesParent: true })],
      now,
    )
    await a.claim({ owner: 'a', now, leaseMs: 30_000, limit: 2, taskIds: ['alpha'] })
    return { parent: parent!.row.id, child: child!.row.id }
  }

  it('a heartbeat holds no row while it waits for one: it extends a held lease once its holder is done', async () => {
    const now = Date.now()
    const { parent, child } = await family(now)
    const leases = [parent, child].map((id) => ({ id, run: 1 }))
    const before = (await a.get(child))!.leaseExpiresAt!
    // A transaction holds the child's row and goes on to lock the parent's (lease recovery
    // abandoning the child does; so did a child's settlement before it locked in id order). A
    // heartbeat that waited for the child's row while holding the parent's would deadlock with it.
    await other.query('BEGIN')
    await lock(child)
    const heartbeat = a.extendLeases('a', leases, now, 60_000)
    while ((await waitingOnLocks()) === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    await lock(parent)
    await other.query('ROLLBACK')
    expect(await heartbeat).toEqual([])
    for (const id of [parent, child])
      expect((await a.get(id))!.leaseExpiresAt, id).toBeGreaterThan(before + 20_000)
  })

  it('a heartbeat waiting for a row that its holder settles reports that lease lost', async () => {
    const now = Date.now()
    const { parent, child } = await family(now)
    const leases = [parent, child].map((id) => ({ id, run: 1 }))
    await other.query('BEGIN')
    await lock(child)
    const heartbeat = a.extendLeases('a', leases, now, 60_000)
    while ((await waitingOnLocks()) === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    await other.query(
      `UPDATE executions SET status = 'completed', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`,
      [child],
    )
    await other.query('COMMIT')
    expect(await heartbeat).toEqual([{ id: child, run: 1 }])
    // Another owner's heartbeat finds neither its own.
    expect(await b.extendLeases('b', leases, now, 60_000)).toEqual(leases)
  })

  it("a child's settlement locks its parent's row before its own, in id order", async () => {
    const now = Date.now()
    const { parent, child } = await family(now)
    // A step record of the parent's holds its row and goes on to lock the child's.
    await other.query('BEGIN')
    await lock(parent)
    const settled = a.settle(
      [{ transition: 'complete', id: child, run: 1, output: '1', wakeParentId: parent }],
      now,
    )
    while ((await waitingOnLocks()) === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    // The settlement waits for the parent's row holding nothing, so the child's row is free.
    await lock(child)
    await other.query('COMMIT')
    expect(await settled).toEqual({ applied: [true], cancelled: [] })
    expect(await a.get(child)).toMatchObject({ status: 'completed' })
  })

  it("a cancel of a child locks its parent's row before its own, as the child's settlement does", async () => {
    const now = Date.now()
    const { parent, child } = await family(now)
    // The child's settlement (waking the parent) holds the parent's row and goes on to lock
    // the child's; the cancel of that child, at the same moment, must not hold the child's.
    await other.query('BEGIN')
    await lock(parent)
    const cancelled = a.cancel(child, now, JSON.stringify({ name: 'CancelledError', message: 'stop' }))
    while ((await waitingOnLocks()) === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    await lock(child)
    await other.query('COMMIT')
    expect(await cancelled).toMatchObject({ row: { id: child, status: 'cancelled' } })
  })
})
