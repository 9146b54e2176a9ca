import { expect } from 'vitest'
import {
  CHANGE_CURSOR_PATTERN,
  newExecutionId,
  type ExecutionRow,
  type NewExecution,
  type Storage,
} from '@ratchet/core'
import {
  T0,
  claimOne,
  claimRequest,
  detailedError,
  enqueueOne,
  fullRows,
  labelOf,
  mustGet,
  stepRecord,
  storedError,
  type ConformanceDeclarer,
} from './fixtures'
import { summaryOf } from './summary-of'

/**
 * The read side: `get`, `list` (summaries, newest first, filtered and keyset-paged), `history`
 * (paged by seq), `steps` (paged by position), and the change feed (`changesSince`,
 * `changeCursor`: opaque cursors that a reader resumes after). Counters: stats.ts.
 */
export function historyAndReadConformance({ group, test }: ConformanceDeclarer): void {
  group('reads', () => {
    test('get of an unknown id returns undefined', async (open) => {
      const storage = await open()
      expect(await storage.get(newExecutionId(T0))).toBeUndefined()
    })

    test('list returns newest first and filters by task and statuses', async (open) => {
      const storage = await open()
      const a1 = await enqueueOne(storage, { taskId: 'alpha', label: 'a1' })
      const b1 = await enqueueOne(storage, { taskId: 'beta', label: 'b1' })
      const a2 = await enqueueOne(storage, { taskId: 'alpha', label: 'a2' })
      const a3 = await enqueueOne(storage, { taskId: 'alpha', label: 'a3' })
      await storage.claim(claimRequest({ limit: 1 })) // a1 (oldest id)
      await storage.cancel(a3.id, T0, storedError('c'))
      const ids = (rows: readonly { id: string }[]) => rows.map((r) => r.id)
      expect(ids(await storage.list({ limit: 10 }))).toEqual([a3.id, a2.id, b1.id, a1.id])
      expect(ids(await storage.list({ taskId: 'alpha', limit: 10 }))).toEqual([a3.id, a2.id, a1.id])
      expect(ids(await storage.list({ statuses: ['queued'], limit: 10 }))).toEqual([a2.id, b1.id])
      expect(ids(await storage.list({ statuses: ['running', 'cancelled'], limit: 10 }))).toEqual([
        a3.id,
        a1.id,
      ])
      expect(ids(await storage.list({ taskId: 'alpha', statuses: ['queued'], limit: 10 }))).toEqual([a2.id])
      expect(ids(await storage.list({ taskId: 'nobody', limit: 10 }))).toEqual([])
      expect(await storage.list({ taskId: 'alpha', statuses: ['running'], limit: 10 })).toEqual([
        summaryOf(await mustGet(storage, a1.id)),
      ])
    })

    test('list pages with limit and beforeId', async (open) => {
      const storage = await open()
      const rows: ExecutionRow[] = []
      for (let i = 0; i < 5; i++)
        rows.push(await enqueueOne(storage, { label: `n${i}`, taskId: i % 2 ? 'beta' : 'alpha' }))
      const newestFirst = rows.map((r) => r.id).reverse()
      const page1 = await storage.list({ limit: 2 })
      expect(page1.map((r) => r.id)).toEqual(newestFirst.slice(0, 2))
      const page2 = await storage.list({ limit: 2, beforeId: page1[1]!.id })
      expect(page2.map((r) => r.id)).toEqual(newestFirst.slice(2, 4))
      const page3 = await storage.list({ limit: 2, beforeId: page2[1]!.id })
      expect(page3.map((r) => r.id)).toEqual(newestFirst.slice(4))
      const alpha = await storage.list({ limit: 10, taskId: 'alpha', beforeId: rows[4]!.id })
      expect((await fullRows(storage, alpha)).map(labelOf)).toEqual(['n2', 'n0'])
    })

    test('history lists every transition in order', async (open) => {
      const storage = await open()
      const { id } = await enqueueOne(storage)
      await claimOne(storage, { now: T0 + 1 })
      await storage.settle([{ transition: 'retry', id, run: 1, error: storedError('e'), delayMs: 1 }], T0 + 2)
      await claimOne(storage, { now: T0 + 3 })
      await storage.settle([{ transition: 'complete', id, run: 2, output: '1' }], T0 + 4)
      const other = await enqueueOne(storage)
      const history = await storage.history(id)
      expect(history.map((h) => [h.from, h.to, h.run, h.at])).toEqual([
        [null, 'queued', 0, T0],
        ['queued', 'running', 1, T0 + 1],
        ['running', 'queued', 1, T0 + 2],
        ['queued', 'running', 2, T0 + 3],
        ['running', 'completed', 2, T0 + 4],
      ])
      expect(history.every((h) => h.executionId === id)).toBe(true)
      const seqs = history.map((h) => h.seq)
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
      expect(new Set(seqs).size).toBe(seqs.length)
      expect((await storage.history(other.id))[0]!.seq).toBeGreaterThan(seqs.at(-1)!)
    })

    test('history of an unknown id is empty', async (open) => {
      const storage = await open()
      expect(await storage.history(newExecutionId(T0))).toEqual([])
    })

    test('list returns summaries: no payloads, the error reduced to name, message and code', async (open) => {
      const storage = await open()
      const big = JSON.stringify({ blob: 'z'.repeat(100_000) })
      const row = await add(storage, { input: big })
      await claim(storage, T0)
      await storage.settle([{ transition: 'fail', id: row.id, run: 1, error: detailedError('boom') }], T0 + 1)
      const other = await add(storage, { input: big }, T0 + 2)
      const listed = await storage.list({ limit: 10 })
      expect(listed).toEqual([
        summaryOf((await storage.get(other.id))!),
        summaryOf((await storage.get(row.id))!),
      ])
      expect(listed.every((r) => !('input' in r) && !('output' in r))).toBe(true)
      expect(JSON.parse(listed[1]!.error!)).toEqual({ name: 'TypeError', message: 'boom', code: 'E_BAD' })
      expect(listed[0]!.error).toBeNull()
    })

    test('list by rootId returns the root and everything below it', async (open) => {
      const storage = await open()
      const root = await add(storage)
      const child = await add(storage, { parentId: root.id, rootId: root.id })
      const grandchild = await add(storage, { parentId: child.id, rootId: root.id })
      await add(storage)
      const tree = await storage.list({ rootId: root.id, limit: 10 })
      expect(tree.map((r) => r.id)).toEqual([grandchild.id, child.id, root.id])
    })

    test('history pages with afterSeq and limit, statusOnly leaves out in-run events', async (open) => {
      const storage = await open()
      const row = await add(storage)
      await claim(storage, T0 + 1)
      await storage.recordSteps(
        [
          {
            executionId: row.id,
            run: 1,
            step: stepAt(0, 'first'),
          },
        ],
        T0 + 2,
      )
      await storage.settle([{ transition: 'complete', id: row.id, run: 1, output: '2' }], T0 + 3)
      const all = await storage.history(row.id)
      expect(all.map((h) => h.event)).toEqual(['status', 'status', 'step', 'status'])
      const first = await storage.history(row.id, { limit: 2 })
      expect(first).toEqual(all.slice(0, 2))
      const rest = await storage.history(row.id, { afterSeq: first[1]!.seq, limit: 10 })
      expect(rest).toEqual(all.slice(2))
      const statuses = await storage.history(row.id, { statusOnly: true, afterSeq: all[0]!.seq, limit: 1 })
      expect(statuses).toEqual([all[1]])
      expect(await storage.history(row.id, { statusOnly: true, afterSeq: all[2]!.seq })).toEqual([all[3]])
      expect(await storage.history(newExecutionId(T0), { limit: 5 })).toEqual([])
    })

    test('steps pages the durable record by position', async (open) => {
      const storage = await open()
      const row = await add(storage)
      await claim(storage, T0 + 1)
      const results = await storage.recordSteps(
        [0, 1, 2, 3, 4].map((p) => ({ executionId: row.id, run: 1, step: stepAt(p, `s${p}`) })),
        T0 + 2,
      )
      expect(results).toEqual(['written', 'written', 'written', 'written', 'written'])
      const page1 = await storage.steps(row.id, { limit: 2 })
      expect(page1.map((s) => s.name)).toEqual(['s0', 's1'])
      expect(page1[0]).toMatchObject({
        executionId: row.id,
        position: 0,
        kind: 'step',
        status: 'done',
        value: '0',
        createdAt: T0 + 2,
      })
      const page2 = await storage.steps(row.id, { afterPosition: 1, limit: 2 })
      expect(page2.map((s) => s.position)).toEqual([2, 3])
      expect((await storage.steps(row.id, { afterPosition: 3, limit: 2 })).map((s) => s.position)).toEqual([
        4,
      ])
      expect(await storage.steps(newExecutionId(T0), { limit: 2 })).toEqual([])
    })

    test('changesSince returns status changes in feed order, filtered by task or tree; changeCursor is the last cursor', async (open) => {
      const storage = await open()
      expect(await storage.changeCursor()).toBe('')
      expect(await storage.changesSince({ after: '', limit: 100 })).toEqual([])
      const root = await add(storage)
      const child = await add(storage, { taskId: 'beta', parentId: root.id, rootId: root.id })
      const other = await add(storage, { taskId: 'beta' })
      await claim(storage, T0 + 1)
      await storage.recordSteps([{ executionId: root.id, run: 1, step: stepAt(0, 'in-run') }], T0 + 2)
      await storage.settle([{ transition: 'complete', id: root.id, run: 1, output: '1' }], T0 + 3)
      const all = await storage.changesSince({ after: '', limit: 100 })
      expect(all.map((c) => [c.executionId, c.from, c.to])).toEqual([
        [root.id, null, 'queued'],
        [child.id, null, 'queued'],
        [other.id, null, 'queued'],
        [root.id, 'queued', 'running'],
        [root.id, 'running', 'completed'],
      ])
      expect(all[1]).toMatchObject({ taskId: 'beta', rootId: root.id, parentId: root.id, run: 0, at: T0 })
      expect(all[2]).toMatchObject({ rootId: other.id, parentId: null })
      expect(all[4]).toMatchObject({ run: 1, at: T0 + 3 })
      // cursors: distinct, well-formed; seqs order one execution's changes and match its history
      const cursors = all.map((c) => c.cursor)
      expect(new Set(cursors).size).toBe(cursors.length)
      for (const cursor of cursors) expect(cursor).toMatch(CHANGE_CURSOR_PATTERN)
      const history = await storage.history(root.id, { statusOnly: true })
      expect(all.filter((c) => c.executionId === root.id).map((c) => c.seq)).toEqual(
        history.map((h) => h.seq),
      )
      expect(await storage.changeCursor()).toBe(cursors[4])
      expect(await storage.changesSince({ after: cursors[1]!, limit: 2 })).toEqual(all.slice(2, 4))
      expect(await storage.changesSince({ after: cursors[4]!, limit: 2 })).toEqual([])
      const beta = await storage.changesSince({ after: '', limit: 100, taskId: 'beta' })
      expect(beta.map((c) => c.executionId)).toEqual([child.id, other.id])
      const tree = await storage.changesSince({ after: '', limit: 100, rootId: root.id })
      expect(tree.map((c) => c.executionId)).toEqual([root.id, child.id, root.id, root.id])
      expect(await storage.changesSince({ after: cursors[2]!, limit: 100, rootId: root.id })).toEqual(
        all.slice(3),
      )
    })

    test('changesSince and changeCursor see what another connection wrote', async (open) => {
      const first = await open()
      const second = await open()
      const before = await first.changeCursor()
      const row = await add(second)
      const after = await first.changeCursor()
      expect(after).not.toBe(before)
      expect(await first.changesSince({ after: before, limit: 10 })).toMatchObject([
        { cursor: after, executionId: row.id, from: null, to: 'queued' },
      ])
    })
  })
}

/** Enqueues one execution (one attempt) at `now`. */
const add = (storage: Storage, overrides: Partial<NewExecution> = {}, now = T0) =>
  enqueueOne(storage, { maxAttempts: 1, ...overrides }, now)
/** Claims the one due execution of `taskId` at `now`. */
const claim = (storage: Storage, now: number, taskId = 'alpha') =>
  claimOne(storage, { now, taskIds: [taskId] })
/** A done step record at `position` whose value is its position. */
const stepAt = (position: number, name: string) => stepRecord(position, { name, value: String(position) })
