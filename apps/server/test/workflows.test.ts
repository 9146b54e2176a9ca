import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient, isDefinedError, safe, type RatchetClient } from '@ratchet/client'
import { tasks } from './fixtures/workflow-tasks'
import { API_KEY, startTestServer, until, type TestServer } from './helpers'

let t: TestServer
let client: RatchetClient<typeof tasks>

beforeEach(async () => {
  t = await startTestServer(tasks, { concurrency: 50 })
  client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
})

afterEach(async () => {
  await t.close()
})

const wait = (id: string) => client.executions.wait(id, { timeoutMs: 20_000 })

describe('workflow shapes over HTTP', () => {
  it('a parent with 500 children and a finalize', async () => {
    const { executionId } = await client.tasks.fan.enqueue({ size: 500 })
    expect(await wait(executionId)).toMatchObject({
      status: 'completed',
      output: { sum: 249_500, failed: 0 },
    })
    const children = await client.executions.list({ parentId: executionId, limit: 500 })
    expect(children.items).toHaveLength(500)
    expect(children.items.every((c) => c.status === 'completed' && c.rootId === executionId)).toBe(true)
  })

  it('failed children settle like allSettled: the finalize decides', async () => {
    const tolerated = await client.tasks.fan.enqueue({ size: 5, failIf: [1, 3], tolerate: 2 })
    expect(await wait(tolerated.executionId)).toMatchObject({
      status: 'completed',
      output: { sum: 0 + 4 + 8, failed: 2 },
    })
    const strict = await client.tasks.fan.enqueue({ size: 5, failIf: [1] })
    expect(await wait(strict.executionId)).toMatchObject({
      status: 'failed',
      error: { code: 'TOO_MANY_FAILURES' },
    })
  })

  it('a sequence of 4: each output is the next input', async () => {
    const { executionId } = await client.tasks.pipeline.enqueue({ n: 1 })
    // ((1 + 1)² + 1)² = 25
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: { n: 25 } })
    const steps = await client.executions.list({ parentId: executionId })
    expect(steps.items.map((e) => e.taskId).reverse()).toEqual(['add-one', 'square', 'add-one', 'square'])
  })

  it('a loop that is done at iteration N, sleeping durably between iterations', async () => {
    const { executionId } = await client.tasks.poller.enqueue({ doneAt: 4 })
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: 4, failures: 0 })
    const history = (await client.executions.history(executionId)).items
    // Three sleeps recorded; short ones pass in memory (shortSleepMs), so they need not park.
    expect(history.filter((h) => h.event === 'wait')).toHaveLength(3)
    expect(history.filter((h) => h.event === 'step').map((h) => h.name)).toEqual([
      'iteration-1',
      'iteration-2',
      'iteration-3',
      'iteration-4',
    ])
  })

  it('recursion 5 levels deep', async () => {
    const { executionId } = await client.executions.enqueue('recurse', { depth: 5 })
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: 15 })
    expect((await client.executions.list({ rootId: executionId })).items).toHaveLength(6)
  })

  it('a tree of fan-outs', async () => {
    const { executionId } = await client.tasks.tree.enqueue({ width: 6 })
    // 6 branches × sum of 2n for n < 6 (= 30)
    expect(await wait(executionId)).toMatchObject({ status: 'completed', output: 180 })
    expect((await client.executions.list({ rootId: executionId, limit: 100 })).items).toHaveLength(1 + 6 + 36)
  })

  it('signals: sent before the wait, after it, filtered with where, and a timeout', async () => {
    const early = await client.tasks.approval.enqueue({ orderId: 'o-1', timeoutMs: 60_000 }, { delayMs: 300 })
    await client.executions.signal(early.executionId, 'approval', { orderId: 'o-1', approved: true })
    expect(await wait(early.executionId)).toMatchObject({ status: 'completed', output: 'approved' })

    const late = await client.tasks.approval.enqueue({ orderId: 'o-2', timeoutMs: 60_000 })
    await until(
      () => client.executions.get(late.executionId),
      (e) => e.status === 'waiting',
    )
    await client.executions.signal(late.executionId, 'approval', { orderId: 'someone-else', approved: true })
    await client.executions.signal(late.executionId, 'approval', { orderId: 'o-2', approved: false })
    expect(await wait(late.executionId)).toMatchObject({ status: 'completed', output: 'rejected' })

    const ignored = await client.tasks.approval.enqueue({ orderId: 'o-3', timeoutMs: 200 })
    expect(await wait(ignored.executionId)).toMatchObject({ status: 'completed', output: 'timed out' })

    const [error] = await safe(
      client.rpc.executions.signal({ id: ignored.executionId, name: 'approval', payload: {} }),
    )
    expect(isDefinedError(error) && error.code).toBe('CONFLICT')
  })

  it('cancelling a parent cancels its whole subtree', async () => {
    const { executionId } = await client.tasks.committee.enqueue({})
    const members = await until(
      () => client.executions.list({ parentId: executionId }),
      (page) => page.items.length === 3 && page.items.every((m) => m.status === 'waiting'),
    )
    expect((await client.executions.get(executionId)).status).toBe('waiting')
    expect((await client.executions.cancel(executionId)).status).toBe('cancelled')
    for (const member of members.items) {
      expect(await client.executions.get(member.id)).toMatchObject({
        status: 'cancelled',
        error: { code: 'PARENT_ENDED' },
      })
    }
    const history = (await client.executions.history(members.items[0]!.id)).items
    expect(history.at(-1)).toMatchObject({ from: 'waiting', to: 'cancelled' })
  })

  it('sleeping tasks woken from outside by a unique key', async () => {
    const withOutput = await client.tasks.sleeper.enqueue({ key: 'invoice-1' })
    const withError = await client.tasks.sleeper.enqueue({ key: 'invoice-2' })
    await until(
      () => Promise.all([withOutput, withError].map((e) => client.executions.get(e.executionId))),
      (all) => all.every((e) => e.status === 'waiting'),
    )
    expect(await client.executions.wakeup('invoice-1', { output: { paid: true } })).toEqual({
      executionId: withOutput.executionId,
    })
    expect(await wait(withOutput.executionId)).toMatchObject({
      status: 'completed',
      output: { woke: { paid: true } },
    })
    await client.executions.wakeup('invoice-2', { error: { message: 'card expired', code: 'CARD_EXPIRED' } })
    expect(await wait(withError.executionId)).toMatchObject({
      status: 'failed',
      error: { message: 'card expired', code: 'CARD_EXPIRED' },
    })

    // an unknown key, a key already woken, and a malformed request are clear errors
    const [unknown] = await safe(client.rpc.executions.wakeup({ key: 'nobody', output: 1 }))
    expect(isDefinedError(unknown) && unknown.code).toBe('NOT_FOUND')
    const [again] = await safe(client.rpc.executions.wakeup({ key: 'invoice-1', output: 2 }))
    expect(isDefinedError(again) && again.code).toBe('CONFLICT')
    const [both] = await safe(
      client.rpc.executions.wakeup({ key: 'invoice-1', output: 1, error: { message: 'x' } }),
    )
    expect(isDefinedError(both) && both.code).toBe('INVALID_INPUT')

    // a key is unique: a second wait on it fails with CONFLICT
    const taken = await client.tasks.sleeper.enqueue({ key: 'invoice-1' })
    expect(await wait(taken.executionId)).toMatchObject({ status: 'failed', error: { code: 'CONFLICT' } })

    const timesOut = await client.tasks.sleeper.enqueue({ key: 'invoice-3', timeoutMs: 100 })
    expect(await wait(timesOut.executionId)).toMatchObject({
      status: 'completed',
      output: { woke: 'timeout' },
    })
  })

  it('cancelling a parent aborts its running child', async () => {
    const { executionId } = await client.tasks.busyParent.enqueue({})
    const [child] = (
      await until(
        () => client.executions.list({ parentId: executionId }),
        (page) => page.items[0]?.status === 'running',
      )
    ).items
    await client.executions.cancel(executionId)
    expect(await client.executions.get(child!.id)).toMatchObject({ status: 'cancelled' })
    // the attempt saw its signal abort and its late failure changed nothing
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await client.executions.get(child!.id)).toMatchObject({
      status: 'cancelled',
      error: { code: 'PARENT_ENDED' },
    })
  })
})

describe('payload limits of step values and signals', () => {
  it('a step value or a signal payload above the limit is refused with its size and the limit', async () => {
    await t.close()
    t = await startTestServer(tasks, { maxPayloadBytes: 4096 })
    client = createClient<typeof tasks>({ url: t.url, apiKey: API_KEY })
    const ok = await client.tasks.bigStep.enqueue({ bytes: 1000 })
    expect(await wait(ok.executionId)).toMatchObject({ status: 'completed', output: 1000 })
    const big = await client.tasks.bigStep.enqueue({ bytes: 5000 })
    const failed = await wait(big.executionId)
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'PAYLOAD_TOO_LARGE' } })
    expect(failed.error?.message).toMatch(/^step "big" value is \d+ bytes, above the limit of 4096 bytes/)

    const { executionId } = await client.tasks.approval.enqueue({ orderId: 'o', timeoutMs: 60_000 })
    const [error] = await safe(
      client.rpc.executions.signal({ id: executionId, name: 'approval', payload: 'x'.repeat(5000) }),
    )
    if (!isDefinedError(error) || error.code !== 'PAYLOAD_TOO_LARGE')
      throw new Error(`unexpected ${String(error)}`)
    expect(error.data).toMatchObject({ field: 'signal payload', limitBytes: 4096 })
  })
})
