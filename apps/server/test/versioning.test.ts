/**
 * Safe deploys of a server task, as a deploy does them: the server process stopped and started
 * again on the same SQLite file with changed task code (DEPLOY, read by the tasks module).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { killChildServers, startChildServer } from './child-server'
import type { tasks } from './fixtures/versioned-tasks'
import { API_KEY, until } from './helpers'

const TASKS = join(import.meta.dirname, 'fixtures/versioned-tasks.ts')
let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-versioning-'))
})

afterEach(async () => {
  await killChildServers()
  rmSync(dir, { recursive: true, force: true })
})

async function deploy(version: string) {
  await killChildServers()
  const server = await startChildServer({
    databaseFile: join(dir, 'ratchet.db'),
    tasksModule: TASKS,
    env: { RATCHET_API_KEYS: `test:${API_KEY}`, DEPLOY: version },
  })
  return createClient<typeof tasks>({ url: server.url, apiKey: API_KEY })
}

describe('safe deploys with ctx.patched', () => {
  it('old executions finish on the old path, new ones take the new one; an unguarded change fails loudly', async () => {
    let client = await deploy('v1')
    const waiting = (id: string) =>
      until(
        () => client.executions.get(id),
        (e) => e.status === 'waiting',
        20_000,
      )
    const old = await client.tasks.checkout.enqueue({ order: 'old' })
    const unguarded = await client.tasks.checkout.enqueue({ order: 'unguarded' })
    await Promise.all([waiting(old.executionId), waiting(unguarded.executionId)])

    client = await deploy('v2-patched')
    const fresh = await client.tasks.checkout.enqueue({ order: 'fresh' })
    await waiting(fresh.executionId)
    for (const { executionId } of [old, fresh]) await client.executions.signal(executionId, 'go', null)
    const wait = (id: string) => client.executions.wait(id, { timeoutMs: 30_000 })
    expect(await wait(old.executionId)).toMatchObject({ status: 'completed', output: 'old' })
    expect(await wait(fresh.executionId)).toMatchObject({ status: 'completed', output: 'new' })
    const names = async (id: string) => (await client.executions.steps(id)).items.map((s) => s.name)
    expect(await names(old.executionId)).toEqual(['reserve', 'go', 'charge'])
    expect(await names(fresh.executionId)).toEqual([
      'patched:audit-first',
      'audit',
      'reserve',
      'go',
      'charge',
    ])

    client = await deploy('v3-unguarded')
    await client.executions.signal(unguarded.executionId, 'go', null)
    expect(await wait(unguarded.executionId)).toMatchObject({
      status: 'failed',
      error: { code: 'NON_DETERMINISTIC_REPLAY' },
    })
  }, 90_000)
})
