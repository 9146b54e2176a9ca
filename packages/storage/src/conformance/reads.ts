import { expect } from 'vitest'
import {
  CHANGE_CURSOR_PATTERN,
  newExecutionId,
  type ExecutionRow,
  type NewExecution,
  type Storage,
} from '@ratchet/core'
import { summaryOf } from './summary-of'

/**
 * Conformance of the read side of the port: `list` summaries, paged `history` and `steps`,
 * `taskStats`, `throughput`, `changesSince` and `changeCursor`. Registered by
 * `runStorageConformance` with its own `group` and `test`.
 */
export interface ConformanceDeclarer {
  group: (name: string, gather: () => void) => void
  test: (title: string, body: (open: () => Promise<Storage>) => Promise<void>) => void
}

const T0 = Date.UTC(2031, 0, 1)
const OWNER = 'reader-a'

function execution(overrides: Partial<NewExecution> = {}): NewExecution {
  return {
    id: newExecutionId(T0),
    taskId: 'alpha',
    input: '{"x":1}',
    maxAttempts: 1,
    maxRecoveries: 5,
    timeoutMs: 60_000,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 },
    priority: 0,
    idempotencyKey: null,
    runAt: T0,
    ...overrides,
  }
}

async function add(storage: Storage, overrides: Partial<NewExecution> = {}, now = T0): Promise<ExecutionRow> {
  const [outcome] = await storage.enqueue([execution(overrides)], now)
  return outcome!.row
}

/** Claims the one due execution of `taskId` at `now`. */
async function claim(storage: Storage, now: number, taskId = 'alpha'): Promise<ExecutionRow> {
  const { claimed } = await storage.claim({ owner: OWNER, now, leaseMs: 30_000, limit: 1, taskIds: [taskId] })
  expect(claimed).toHaveLength(1)
  return claimed[0]!
}

const errorJson = (message: string) =>
  JSON.stringify({
    name: 'TypeError',
    message,
    code: 'E_BAD',
    retryable: false,
    stack: 'TypeError: '.padEnd(10_000, 'x'),
    data: { big: 'y'.repeat(10_000) },
  })

export function readConformance({ group, test }: ConformanceDeclarer): void {
  group('reads', () => {
    test('list returns summaries: no payloads, the error reduced to name, message and code', async (open) => {
      const storage = await open()
      const big = JSON.stringify({ blob: 'z'.repeat(100_000) })
      const row = await add(storage, { input: big })
      await claim(storage, T0)
      await storage.settle([{ transition: 'fail', id: row.id, run: 1, error: errorJson('boom') }], T0 + 1)
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

    test('taskStats counts by task and status, and the queue due now', async (open) => {
      const storage = await open()
      expect(await storage.taskStats(T0)).toEqual([])
      await add(storage, { runAt: T0 - 500 })
      await add(storage, { runAt: T0 - 100 })
      await add(storage, { runAt: T0 + 60_000 })
      await add(storage, { taskId: 'beta' })
      await claim(storage, T0, 'beta')
      const stats = await storage.taskStats(T0)
      const zero = { queued: 0, running: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0, timed_out: 0 }
      expect([...stats].sort((a, b) => a.taskId.localeCompare(b.taskId))).toEqual([
        { taskId: 'alpha', counts: { ...zero, queued: 3 }, queueDepth: 2, oldestQueuedAt: T0 - 500 },
        { taskId: 'beta', counts: { ...zero, running: 1 }, queueDepth: 0, oldestQueuedAt: null },
      ])
    })

    test('throughput counts ends by finishedAt and first starts by startedAt, per bucket', async (open) => {
      const storage = await open()
      const a = await add(storage)
      const b = await add(storage)
      const c = await add(storage, { taskId: 'beta' })
      await add(storage) // never started
      await claim(storage, T0 + 100) // a
      await claim(storage, T0 + 1_100) // b
      await claim(storage, T0 + 1_200, 'beta') // c
      await storage.settle([{ transition: 'complete', id: a.id, run: 1, output: '1' }], T0 + 1_500)
      await storage.settle([{ transition: 'fail', id: b.id, run: 1, error: errorJson('no') }], T0 + 2_500)
      await storage.settle(
        [{ transition: 'time_out', id: c.id, run: 1, error: errorJson('late') }],
        T0 + 2_600,
      )
      const rows = await storage.throughput({ from: T0, to: T0 + 3_000, bucketMs: 1_000 })
      const none = { completed: 0, failed: 0, timedOut: 0, cancelled: 0, started: 0 }
      expect(rows).toEqual([
        { ...none, bucket: 0, started: 1 },
        { ...none, bucket: 1, completed: 1, started: 2 },
        { ...none, bucket: 2, failed: 1, timedOut: 1 },
      ])
      expect(await storage.throughput({ taskId: 'beta', from: T0, to: T0 + 3_000, bucketMs: 1_000 })).toEqual(
        [
          { ...none, bucket: 1, started: 1 },
          { ...none, bucket: 2, timedOut: 1 },
        ],
      )
      // `to` is exclusive, `from` inclusive
      expect(await storage.throughput({ from: T0 + 1_500, to: T0 + 2_500, bucketMs: 10_000 })).toEqual([
        { ...none, bucket: 0, completed: 1 },
      ])
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

function stepAt(position: number, name: string) {
  return {
    position,
    name,
    kind: 'step' as const,
    status: 'done' as const,
    value: String(position),
    error: null,
    wakeAt: null,
    childId: null,
    signalName: null,
    wakeupKey: null,
  }
}
