import { expect } from 'vitest'
import { newExecutionId, type NewExecution, type PurgeRequest, type Storage } from '@ratchet/core'
import { BACKOFF, T0, type ConformanceDeclarer } from './fixtures'

/**
 * Retention: `purge` deletes whole finished trees past their root task's retention (children
 * first, the root last, at most `limit` rows a call) and old events, never an unfinished
 * execution; cursors read before a purge stay valid. And `reclaimSpace`.
 */
export function purgeConformance({ group, test }: ConformanceDeclarer): void {
  group('purge (retention)', () => {
    const HOUR = 3_600_000
    const DAY = 24 * HOUR

    const execution = (overrides: Partial<NewExecution> = {}, at = T0): NewExecution => ({
      id: newExecutionId(at),
      taskId: 'alpha',
      input: '{}',
      maxAttempts: 3,
      maxRecoveries: 5,
      timeoutMs: 60_000,
      backoff: BACKOFF,
      priority: 0,
      idempotencyKey: null,
      runAt: at,
      ...overrides,
    })
    const enqueue = async (storage: Storage, overrides: Partial<NewExecution> = {}, at = T0) => {
      const [outcome] = await storage.enqueue([execution(overrides, at)], at)
      return outcome!.row
    }
    /** Claims `id` (it must be the only due one of its task) at `at`. */
    const claim = async (storage: Storage, id: string, taskId: string, at: number) => {
      const { claimed } = await storage.claim({
        owner: 'w',
        now: at,
        leaseMs: 30_000,
        limit: 1,
        taskIds: [taskId],
      })
      expect(claimed.map((r) => r.id)).toEqual([id])
      return claimed[0]!
    }
    /** Runs an execution to `completed` at `at`: claim, one step record, complete. */
    const finish = async (storage: Storage, id: string, taskId: string, at: number) => {
      const row = await claim(storage, id, taskId, at)
      await storage.recordSteps(
        [
          {
            executionId: id,
            run: row.runs,
            step: {
              position: 0,
              name: 'work',
              kind: 'step',
              status: 'done',
              value: '1',
              error: null,
              wakeAt: null,
              childId: null,
              signalName: null,
              wakeupKey: null,
            },
          },
        ],
        at,
      )
      const { applied } = await storage.settle(
        [{ transition: 'complete', id, run: row.runs, output: '1' }],
        at,
      )
      expect(applied).toEqual([true])
    }
    const request = (now: number, overrides: Partial<PurgeRequest> = {}): PurgeRequest => ({
      now,
      defaultRetentionMs: DAY,
      retentionByTask: {},
      limit: 500,
      ...overrides,
    })
    /**
     * A later change (a queued execution's history row): purge keeps the tree that wrote the
     * newest history row, so that seqs never go back, until something newer is written.
     */
    const laterChange = async (storage: Storage, at = T0) => {
      await enqueue(storage, { taskId: 'later' }, at)
    }
    const gone = async (storage: Storage, id: string) => {
      expect(await storage.get(id)).toBeUndefined()
      expect(await storage.history(id)).toEqual([])
      const state = await storage.loadRunState(id)
      expect(state.steps).toEqual([])
      expect(state.inbox).toEqual([])
    }

    test('purge deletes a finished tree past its retention with every row, and frees its idempotency key', async (open) => {
      const storage = await open()
      const root = await enqueue(storage, { idempotencyKey: 'order-1' })
      await storage.signal(root.id, 'hello', '"x"', T0) // never consumed: stays in the inbox
      const child = await enqueue(storage, { taskId: 'beta', parentId: root.id, rootId: root.id })
      await finish(storage, child.id, 'beta', T0 + 1)
      await finish(storage, root.id, 'alpha', T0 + 2)
      expect(await storage.history(root.id)).not.toEqual([])
      await laterChange(storage, T0 + 2)

      // a day minus 1 ms after the root finished: still kept
      expect(await storage.purge(request(T0 + 2 + DAY))).toMatchObject({ executions: 0, more: false })
      expect(await storage.get(root.id)).toBeDefined()

      const outcome = await storage.purge(request(T0 + 3 + DAY))
      expect(outcome).toMatchObject({ executions: 2, steps: 2, signals: 1, more: false })
      expect(outcome.history).toBeGreaterThanOrEqual(6)
      await gone(storage, root.id)
      await gone(storage, child.id)
      // the key is free again: the same key makes a new execution
      const [again] = await storage.enqueue([execution({ idempotencyKey: 'order-1' })], T0 + 4 + DAY)
      expect(again).toMatchObject({ created: true })
      expect(again!.row.id).not.toBe(root.id)
    })

    test('purge never deletes an unfinished execution, and an unfinished root keeps its finished children', async (open) => {
      const storage = await open()
      const queued = await enqueue(storage, { taskId: 'q' })
      const running = await enqueue(storage, { taskId: 'r' })
      await claim(storage, running.id, 'r', T0)
      const waiting = await enqueue(storage, { taskId: 'w' })
      const w = await claim(storage, waiting.id, 'w', T0)
      await storage.settle([{ transition: 'park', id: waiting.id, run: w.runs, runAt: T0 + 1000 * DAY }], T0)
      const child = await enqueue(storage, { taskId: 'c', parentId: waiting.id, rootId: waiting.id })
      await finish(storage, child.id, 'c', T0)
      // a finished root whose spawned child still runs is kept whole too
      const spawner = await enqueue(storage, { taskId: 's' })
      const spawned = await enqueue(storage, { taskId: 'sc', parentId: spawner.id, rootId: spawner.id })
      await finish(storage, spawner.id, 's', T0)

      const outcome = await storage.purge(request(T0 + 100 * DAY, { defaultRetentionMs: 1 }))
      expect(outcome).toMatchObject({ executions: 0, more: false })
      for (const id of [queued.id, running.id, waiting.id, child.id, spawner.id, spawned.id])
        expect(await storage.get(id)).toBeDefined()
      expect((await storage.loadRunState(child.id)).steps).toHaveLength(1)

      // once the spawned child ends, its tree goes as a whole
      await finish(storage, spawned.id, 'sc', T0 + 100 * DAY)
      await laterChange(storage, T0 + 100 * DAY)
      expect(await storage.purge(request(T0 + 100 * DAY + 2, { defaultRetentionMs: 1 }))).toMatchObject({
        executions: 2,
      })
      await gone(storage, spawner.id)
      await gone(storage, spawned.id)
    })

    test('purge uses each root task retention, null keeping forever', async (open) => {
      const storage = await open()
      const ids: Record<string, string> = {}
      for (const taskId of ['default', 'short', 'long', 'forever', 'unregistered']) {
        ids[taskId] = (await enqueue(storage, { taskId })).id
        await finish(storage, ids[taskId], taskId, T0)
      }
      await laterChange(storage)
      const retentionByTask = { short: HOUR, long: 30 * DAY, forever: null }
      const remaining = async () =>
        (await Promise.all(Object.entries(ids).map(async ([t, id]) => ((await storage.get(id)) ? t : null))))
          .filter(Boolean)
          .sort()
      await storage.purge(request(T0 + 2 * HOUR, { retentionByTask }))
      expect(await remaining()).toEqual(['default', 'forever', 'long', 'unregistered'])
      await storage.purge(request(T0 + 2 * DAY, { retentionByTask }))
      expect(await remaining()).toEqual(['forever', 'long'])
      await storage.purge(request(T0 + 365 * DAY, { retentionByTask }))
      expect(await remaining()).toEqual(['forever'])
      // null default: nothing without its own retention goes
      const other = await enqueue(storage, { taskId: 'other' })
      await finish(storage, other.id, 'other', T0)
      await storage.purge(request(T0 + 365 * DAY, { defaultRetentionMs: null }))
      expect(await storage.get(other.id)).toBeDefined()
    })

    test('purge deletes at most limit rows per call, a large tree over several calls with its root last', async (open) => {
      const storage = await open()
      const root = await enqueue(storage)
      const children: string[] = []
      for (let i = 0; i < 5; i++) {
        const child = await enqueue(storage, { taskId: 'beta', parentId: root.id, rootId: root.id })
        await finish(storage, child.id, 'beta', T0)
        children.push(child.id)
      }
      await finish(storage, root.id, 'alpha', T0)
      await laterChange(storage)
      const totals = { executions: 0, calls: 0 }
      for (;;) {
        const outcome = await storage.purge(request(T0 + 2 * DAY, { limit: 7 }))
        const rows = outcome.executions + outcome.history + outcome.steps + outcome.signals + outcome.events
        expect(rows).toBeLessThanOrEqual(7)
        totals.executions += outcome.executions
        totals.calls++
        if (!outcome.more) break
        // the root goes last: while anything of its tree is left, it is still there
        if (totals.executions < 6) expect(await storage.get(root.id)).toBeDefined()
      }
      expect(totals.executions).toBe(6)
      expect(totals.calls).toBeGreaterThan(3)
      for (const id of [root.id, ...children]) await gone(storage, id)
    })

    test('purge deletes events older than the default retention, oldest first', async (open) => {
      const storage = await open()
      const event = (at: number) => ({
        id: newExecutionId(at),
        type: 'ping',
        payload: '{"type":"ping"}',
        createdAt: at,
        executionIds: '[]',
        publishId: null,
      })
      await storage.publishEvent(event(T0), [], T0)
      await storage.publishEvent(event(T0 + DAY), [], T0 + DAY)
      expect(await storage.purge(request(T0 + DAY + 1))).toMatchObject({ events: 1 })
      expect((await storage.listEvents({ limit: 10 })).map((e) => e.createdAt)).toEqual([T0 + DAY])
      expect(await storage.purge(request(T0 + 10 * DAY, { defaultRetentionMs: null }))).toMatchObject({
        events: 0,
      })
    })

    test('cursors survive purges: after a purge of everything due, a new change comes after every cursor read before', async (open) => {
      const storage = await open()
      const a = await enqueue(storage)
      await finish(storage, a.id, 'alpha', T0)
      const b = await enqueue(storage, { taskId: 'beta' })
      await finish(storage, b.id, 'beta', T0 + 1)
      const before = await storage.changesSince({ after: '', limit: 100 })
      const old = await storage.changeCursor()
      expect(before.at(-1)!.cursor).toBe(old)

      // both are past their retention (SQLite keeps b, which wrote the newest history row)
      while ((await storage.purge(request(T0 + 10 * DAY))).more);
      await gone(storage, a.id)

      const c = await enqueue(storage, {}, T0 + 10 * DAY)
      const cCursor = await storage.changeCursor()
      expect(before.map((change) => change.cursor)).not.toContain(cCursor)
      expect(await storage.changesSince({ after: old, limit: 10 })).toMatchObject([
        { cursor: cCursor, executionId: c.id, to: 'queued' },
      ])
      // every cursor read before the purge still places the new change after it
      for (const change of before)
        expect((await storage.changesSince({ after: change.cursor, limit: 100 })).at(-1)).toMatchObject({
          cursor: cCursor,
        })

      // with a later change, b goes
      await finish(storage, c.id, 'alpha', T0 + 10 * DAY)
      const max = await storage.changeCursor()
      while ((await storage.purge(request(T0 + 20 * DAY))).more);
      await gone(storage, b.id)
      const d = await enqueue(storage, {}, T0 + 20 * DAY)
      const dCursor = await storage.changeCursor()
      expect(dCursor).not.toBe(max)
      expect(await storage.changesSince({ after: max, limit: 10 })).toMatchObject([
        { cursor: dCursor, executionId: d.id, to: 'queued' },
      ])
    })

    test('cursors survive a continueAsNew that deletes the newest history row: its continue row comes after', async (open) => {
      const storage = await open()
      const other = await enqueue(storage, { taskId: 'beta' })
      const row = await enqueue(storage)
      const claimed = await claim(storage, row.id, 'alpha', T0 + 1)
      const before = await storage.changeCursor()
      // the claim wrote the newest row; the continue deletes this execution's whole history
      expect((await storage.changesSince({ after: '', limit: 100 })).at(-1)).toMatchObject({
        cursor: before,
        executionId: row.id,
        to: 'running',
      })
      const { applied } = await storage.settle(
        [{ transition: 'continue', id: row.id, run: claimed.runs, input: '{}' }],
        T0 + 2,
      )
      expect(applied).toEqual([true])
      const after = await storage.changeCursor()
      expect(after).not.toBe(before)
      const changes = await storage.changesSince({ after: before, limit: 10 })
      expect(changes).toMatchObject([{ cursor: after, executionId: row.id, from: 'running', to: 'queued' }])
      expect((await storage.history(row.id)).map((h) => h.seq)).toEqual([changes[0]!.seq])
      expect((await storage.history(other.id)).length).toBe(1)
    })

    test('reclaimSpace returns free pages after a purge', async (open) => {
      const storage = await open()
      for (let i = 0; i < 50; i++) {
        const row = await enqueue(storage, { input: JSON.stringify({ pad: 'x'.repeat(8000), i }) })
        await finish(storage, row.id, 'alpha', T0)
      }
      while ((await storage.purge(request(T0 + 2 * DAY))).more);
      let last = await storage.reclaimSpace(10)
      expect(last.freedPages + last.freePages).toBeGreaterThanOrEqual(0)
      while (last.freePages > 0) last = await storage.reclaimSpace(10)
      expect(last.freePages).toBe(0)
    })
  })
}
