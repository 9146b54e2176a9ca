import { expect } from 'vitest'
import { ConflictError, newExecutionId, type EventRow, type ExecutionRow } from '@ratchet/core'
import { BACKOFF, T0, countAll, enqueueOne, newExecution, type ConformanceDeclarer } from './fixtures'

/**
 * Enqueue and its idempotency keys (an existing key returns the existing execution when the
 * input is the same JSON value, conflicts when it is not, and a conflict writes nothing of the
 * call), and published events (recorded with the executions they start, in one transaction;
 * a repeated publish id is the same event).
 */
export function enqueueConformance({ group, test }: ConformanceDeclarer): void {
  group('enqueue', () => {
    test('enqueue stores a queued execution and its history row', async (open) => {
      const storage = await open()
      const wanted = newExecution({
        label: 'a',
        priority: 7,
        idempotencyKey: 'k-1',
        runAt: T0 + 500,
        maxAttempts: 4,
        maxRecoveries: 2,
        timeoutMs: 1234,
      })
      const [outcome] = await storage.enqueue([wanted], T0)
      const expected: ExecutionRow = {
        id: wanted.id,
        taskId: 'alpha',
        status: 'queued',
        input: wanted.input,
        output: null,
        error: null,
        runs: 0,
        maxAttempts: 4,
        recoveries: 0,
        maxRecoveries: 2,
        claimedAt: null,
        timeoutMs: 1234,
        backoff: expect.any(String) as string,
        priority: 7,
        idempotencyKey: 'k-1',
        runAt: T0 + 500,
        leaseOwner: null,
        leaseExpiresAt: null,
        createdAt: T0,
        updatedAt: T0,
        startedAt: null,
        finishedAt: null,
        failures: 0,
        parentId: null,
        rootId: null,
        wakesParent: 0,
        deadlineAt: null,
        wakePending: 0,
        generation: 0,
        debounceKey: null,
      }
      expect(outcome).toEqual({ row: expected, created: true })
      expect(JSON.parse(outcome!.row.backoff)).toEqual(BACKOFF)
      expect(await storage.get(wanted.id)).toEqual(outcome!.row)
      expect(await storage.history(wanted.id)).toEqual([
        {
          seq: expect.any(Number) as number,
          executionId: wanted.id,
          at: T0,
          from: null,
          to: 'queued',
          run: 0,
          detail: null,
          event: 'status',
          name: null,
        },
      ])
    })

    test('enqueue returns each row as stored, every optional column set or not', async (open) => {
      const storage = await open()
      const parent = await enqueueOne(storage, { label: 'parent' })
      const wanted = [
        newExecution({
          label: 'child',
          parentId: parent.id,
          rootId: parent.id,
          wakesParent: true,
          deadlineAt: T0 + 9_000,
          priority: -3,
          backoff: { initialMs: 10, factor: 1.5, maxMs: 20 },
        }),
        newExecution({ label: 'spawned', parentId: parent.id, rootId: parent.id, wakesParent: false }),
        newExecution({ label: 'plain', input: '{"b":1,"a":[2,"x"]}' }),
      ]
      const outcomes = await storage.enqueue(wanted, T0 + 5)
      for (const outcome of outcomes) expect(await storage.get(outcome.row.id)).toEqual(outcome.row)
      expect(outcomes.map((o) => [o.row.parentId, o.row.wakesParent, o.row.deadlineAt])).toEqual([
        [parent.id, 1, T0 + 9_000],
        [parent.id, 0, null],
        [null, 0, null],
      ])
    })

    test('enqueue of several executions returns one outcome each, in order', async (open) => {
      const storage = await open()
      const wanted = [
        newExecution({ label: 'a' }),
        newExecution({ label: 'b' }),
        newExecution({ label: 'c' }),
      ]
      const outcomes = await storage.enqueue(wanted, T0)
      expect(outcomes.map((o) => [o.row.id, o.created])).toEqual(wanted.map((w) => [w.id, true]))
      expect(await countAll(storage)).toBe(3)
    })

    test('an existing (taskId, idempotencyKey) with the same input is returned with created false and no second history row', async (open) => {
      const storage = await open()
      const first = await enqueueOne(storage, { label: 'same', idempotencyKey: 'same' })
      const again = newExecution({ label: 'same', idempotencyKey: 'same' })
      const [outcome] = await storage.enqueue([again], T0 + 10)
      expect(outcome).toEqual({ row: first, created: false })
      expect(await storage.get(again.id)).toBeUndefined()
      expect(await storage.history(first.id)).toHaveLength(1)
      expect(await countAll(storage)).toBe(1)
    })

    test('an existing (taskId, idempotencyKey) with another input throws ConflictError and writes nothing of the call', async (open) => {
      const storage = await open()
      const first = await enqueueOne(storage, { label: 'first', idempotencyKey: 'same' })
      const innocent = newExecution({ label: 'innocent' })
      const clash = newExecution({ label: 'second', idempotencyKey: 'same' })
      await expect(storage.enqueue([innocent, clash], T0 + 10)).rejects.toBeInstanceOf(ConflictError)
      expect(await storage.get(innocent.id)).toBeUndefined()
      expect(await storage.get(clash.id)).toBeUndefined()
      expect(await storage.history(first.id)).toHaveLength(1)
      expect(await countAll(storage)).toBe(1)
    })

    test('the same input with its keys in another order is the same input: the existing row, no conflict', async (open) => {
      const storage = await open()
      const first = await enqueueOne(storage, {
        idempotencyKey: 'ordered',
        input: '{"label":"x","nested":{"a":1,"b":[1,{"c":2,"d":3}]}}',
      })
      const [outcome] = await storage.enqueue(
        [
          newExecution({
            idempotencyKey: 'ordered',
            input: '{"nested":{"b":[1,{"d":3,"c":2}],"a":1},"label":"x"}',
          }),
        ],
        T0 + 10,
      )
      expect(outcome).toEqual({ row: first, created: false })
      // The stored text is the first caller's, as it came.
      expect(first.input).toBe('{"label":"x","nested":{"a":1,"b":[1,{"c":2,"d":3}]}}')
      await expect(
        storage.enqueue(
          [
            newExecution({
              idempotencyKey: 'ordered',
              input: '{"nested":{"b":[{"d":3,"c":2},1],"a":1},"label":"x"}',
            }),
          ],
          T0 + 10,
        ),
      ).rejects.toBeInstanceOf(ConflictError)
      expect(await countAll(storage)).toBe(1)
    })

    test('a key repeated within one enqueue call yields one execution', async (open) => {
      const storage = await open()
      const a = newExecution({ label: 'a', idempotencyKey: 'dup' })
      const b = newExecution({ label: 'a', idempotencyKey: 'dup' })
      const [first, second] = await storage.enqueue([a, b], T0)
      expect(first?.created).toBe(true)
      expect(second).toEqual({ row: first!.row, created: false })
      expect(await countAll(storage)).toBe(1)
    })

    test('the same idempotency key on another task is a distinct execution', async (open) => {
      const storage = await open()
      const a = await enqueueOne(storage, { taskId: 'alpha', idempotencyKey: 'shared' })
      const b = await enqueueOne(storage, { taskId: 'beta', idempotencyKey: 'shared' })
      expect(b.id).not.toBe(a.id)
      expect(await countAll(storage)).toBe(2)
    })

    test('executions without an idempotency key never collide', async (open) => {
      const storage = await open()
      const outcomes = await storage.enqueue([newExecution(), newExecution(), newExecution()], T0)
      expect(outcomes.every((o) => o.created)).toBe(true)
      expect(await storage.enqueue([newExecution()], T0)).toEqual([
        expect.objectContaining({ created: true }),
      ])
      expect(await countAll(storage)).toBe(4)
    })
  })
}

export function eventConformance({ group, test }: ConformanceDeclarer): void {
  group('events', () => {
    test('publishEvent records the event and enqueues its executions together; a failure stores neither', async (open) => {
      const storage = await open()
      const event = (
        id: string,
        executionIds: string[],
        publishId: string | null = null,
        payload = '{"type":"order.placed"}',
      ) => ({
        id,
        type: 'order.placed',
        payload,
        createdAt: T0,
        executionIds: JSON.stringify(executionIds),
        publishId,
      })
      const a = newExecution({ label: 'a', idempotencyKey: 'event:1' })
      const first = await storage.publishEvent(event(newExecutionId(T0), [a.id], 'evt-1'), [a], T0)
      expect(first).toMatchObject({ repeat: false, outcomes: [expect.objectContaining({ created: true })] })
      expect(await storage.listEvents({ limit: 10 })).toEqual([
        expect.objectContaining({ type: 'order.placed', executionIds: JSON.stringify([a.id]) }),
      ])
      // The same key with another input conflicts: no event row, no execution.
      const clash = newExecution({ label: 'other', idempotencyKey: 'event:1' })
      await expect(
        storage.publishEvent(event(newExecutionId(T0), [clash.id]), [clash], T0),
      ).rejects.toBeInstanceOf(ConflictError)
      expect(await storage.listEvents({ limit: 10 })).toHaveLength(1)
      expect(await countAll(storage)).toBe(1)
      // The same publish id again: a repeat, nothing written; with another payload, a conflict.
      const again = await storage.publishEvent(event(newExecutionId(T0 + 1), [a.id], 'evt-1'), [a], T0 + 1)
      expect(again).toMatchObject({ repeat: true, outcomes: [], event: { id: first.event.id } })
      // Key order does not make another payload.
      const reordered = await storage.publishEvent(
        { ...event(newExecutionId(T0 + 1), [], 'evt-2', '{"type":"order.placed","a":{"x":1,"y":2}}') },
        [],
        T0 + 1,
      )
      expect(
        await storage.publishEvent(
          event(newExecutionId(T0 + 1), [], 'evt-2', '{"a":{"y":2,"x":1},"type":"order.placed"}'),
          [],
          T0 + 1,
        ),
      ).toMatchObject({ repeat: true, event: { id: reordered.event.id } })
      await expect(
        storage.publishEvent(
          event(newExecutionId(T0 + 1), [], 'evt-1', '{"type":"order.placed","x":1}'),
          [],
          T0 + 1,
        ),
      ).rejects.toBeInstanceOf(ConflictError)
      expect(await storage.listEvents({ limit: 10 })).toHaveLength(2)
      // No listener: the event alone.
      await storage.publishEvent(event(newExecutionId(T0 + 1), []), [], T0 + 1)
      expect(await storage.listEvents({ type: 'order.placed', limit: 10 })).toHaveLength(3)
    })

    test('listEvents returns events newest first, optionally of one type, paged with beforeId', async (open) => {
      const storage = await open()
      const recorded: EventRow[] = []
      for (let i = 0; i < 5; i++) {
        const type = i % 2 === 0 ? 'order.placed' : 'order.paid'
        const event = {
          id: newExecutionId(T0 + i),
          type,
          payload: JSON.stringify({ type, i }),
          createdAt: T0 + i,
          executionIds: '[]',
          publishId: null,
        }
        recorded.push((await storage.publishEvent(event, [], T0 + i)).event)
      }
      const newestFirst = [...recorded].reverse()
      expect(await storage.listEvents({ limit: 10 })).toEqual(newestFirst)
      const page1 = await storage.listEvents({ limit: 2 })
      expect(page1).toEqual(newestFirst.slice(0, 2))
      expect(await storage.listEvents({ limit: 2, beforeId: page1[1]!.id })).toEqual(newestFirst.slice(2, 4))
      expect(await storage.listEvents({ type: 'order.placed', limit: 10 })).toEqual(
        newestFirst.filter((e) => e.type === 'order.placed'),
      )
      expect(await storage.listEvents({ type: 'order.placed', beforeId: recorded[4]!.id, limit: 1 })).toEqual(
        [recorded[2]],
      )
      expect(await storage.listEvents({ type: 'nobody', limit: 10 })).toEqual([])
    })
  })
}
