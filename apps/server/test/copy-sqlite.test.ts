/**
 * Moving from SQLite to PostgreSQL, as a user does it, with real processes: a server on SQLite
 * leaves unfinished workflows (a durable sleep, a wait for a signal, a fan-out whose children
 * are still queued), it is stopped (SIGTERM), `ratchet copy-sqlite` copies its file into an
 * empty PostgreSQL database, and a server started on PostgreSQL finishes every workflow without
 * running a completed step again (counted in marker files outside the processes). Skipped, with
 * one line saying why, when PostgreSQL is unreachable.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'
import { killChildServers, startChildServer, type ChildServer } from './child-server'
import { ratchet } from './cli-run'
import type { tasks } from './fixtures/move-tasks'
import { API_KEY, until } from './helpers'

const pg = await usePostgresTestDatabase()

const TASKS = join(import.meta.dirname, 'fixtures/move-tasks.ts')

let dir: string
let markers: string
let databaseFile: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ratchet-move-'))
  markers = join(dir, 'markers')
  mkdirSync(markers)
  databaseFile = join(dir, 'ratchet.db')
})
afterEach(() => killChildServers())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function startServer(databaseUrl: string): Promise<ChildServer> {
  return startChildServer({
    databaseFile,
    tasksModule: TASKS,
    env: {
      DATABASE_URL: databaseUrl,
      RATCHET_API_KEYS: `move:${API_KEY}`,
      RATCHET_TEST_MARKERS: markers,
      RATCHET_DRAIN_MS: '5000',
      // Every durable sleep parks (is written down), however short.
      RATCHET_SHORT_SLEEP_MS: '0',
      RATCHET_POLL_INTERVAL_MS: '500',
    },
  })
}

const marksOf = (executionId: string): string[] => {
  const file = join(markers, executionId)
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []
}

/** Long enough that nothing sleeping or delayed comes due before the SQLite server is stopped. */
const LATER_MS = 12_000

describe.skipIf(!pg.available)('moving from SQLite to PostgreSQL (ratchet copy-sqlite)', () => {
  it('unfinished workflows stopped on SQLite complete on PostgreSQL, completed steps not run again', async () => {
    // 1. On SQLite: three workflows, each stopped part-way.
    const sqlite = await startServer(`file:${databaseFile}`)
    let client = createClient<typeof tasks>({ url: sqlite.url, apiKey: API_KEY })
    const napper = (await client.tasks.napper.enqueue({ napMs: LATER_MS })).executionId
    const approval = (await client.tasks.approval.enqueue({ order: 'o-1' }, { idempotencyKey: 'order-o-1' }))
      .executionId
    const assemble = (await client.tasks.assemble.enqueue({ width: 3, delayMs: LATER_MS })).executionId
    await until(
      async () => Promise.all([napper, approval, assemble].map((id) => client.executions.get(id))),
      (all) => all.every((e) => e.status === 'waiting'),
      20_000,
    )
    const parts = () => client.executions.list({ parentId: assemble })
    const before = await until(parts, (page) => page.items.some((p) => p.status === 'completed'), 20_000)
    expect(before.items.map((p) => p.status).sort()).toEqual(['completed', 'queued', 'queued'])
    const partIds = before.items.map((p) => p.id)
    const firstPart = before.items.find((p) => p.status === 'completed')!.id

    sqlite.process.kill('SIGTERM')
    expect(await sqlite.exited).toBe(0)

    // 2. The copy, as a user runs it.
    const copy = await ratchet(['copy-sqlite', '--from', `file:${databaseFile}`, '--to', pg.url])
    expect(copy.code, copy.stderr).toBe(0)
    // stderr: nothing, or (a copy that took over a second on a busy machine) progress lines.
    for (const line of copy.stderr.split('\n').filter(Boolean))
      expect(line).toMatch(
        /^ratchet: copy-sqlite: (\w+: [\d,]+ of [\d,]+ rows|every row is in|counting|committ)/,
      )
    expect(copy.stdout).toMatch(
      new RegExp(
        `^ratchet: copied ${databaseFile} into PostgreSQL database "${pg.name}" on [^ ]+ in [\\d.]+ s\\n`,
      ),
    )
    // 3 workflows + 3 parts; 3 waiting, 2 queued parts.
    expect(copy.stdout).toMatch(/\n {2}executions +6\n/)
    expect(copy.stdout).toContain('unfinished executions: 2 queued, 3 waiting, 0 running')
    const rows = await pg.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM executions GROUP BY status ORDER BY status',
    )
    expect(rows).toEqual([
      { status: 'completed', n: 1 },
      { status: 'queued', n: 2 },
      { status: 'waiting', n: 3 },
    ])

    // A second copy into the now filled database is refused, naming what it found.
    const again = await ratchet(['copy-sqlite', '--from', `file:${databaseFile}`, '--to', pg.url])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(
      /^ratchet: copy-sqlite: --to: PostgreSQL database ".*" on .* is not empty: it holds executions \(6 rows\)/,
    )

    // 3. On PostgreSQL: the signal, and every workflow ends.
    const postgres = await startServer(pg.url)
    client = createClient<typeof tasks>({ url: postgres.url, apiKey: API_KEY })
    await client.executions.signal(approval, 'approve', { approved: true })
    const ended = await Promise.all(
      [napper, approval, assemble].map((id) => client.executions.wait(id, { timeoutMs: 30_000 })),
    )
    expect(ended.map((e) => [e.status, e.output])).toEqual([
      ['completed', 'rested'],
      ['completed', { order: 'o-1', approved: true }],
      ['completed', 0 + 10 + 20],
    ])
    // Each step ran once, across both servers: those done on SQLite were not run again.
    expect(marksOf(napper)).toEqual(['before', 'after'])
    expect(marksOf(approval)).toEqual(['before', 'after'])
    expect(marksOf(assemble)).toEqual(['plan', 'sum 30'])
    expect(partIds.map((id) => marksOf(id).length)).toEqual([1, 1, 1])
    expect(marksOf(firstPart)).toEqual(['part 0'])
    // The idempotency key came along.
    const repeat = await client.tasks.approval.enqueue({ order: 'o-1' }, { idempotencyKey: 'order-o-1' })
    expect(repeat).toMatchObject({ executionId: approval, created: false })
    // History goes on where SQLite left it: one timeline per execution, in order.
    const history = (await client.executions.history(napper, { statusOnly: true })).items
    expect(history.map((h) => `${h.from ?? '-'}>${h.to}`)).toEqual([
      '->queued',
      'queued>running',
      'running>waiting',
      'waiting>queued',
      'queued>running',
      'running>completed',
    ])

    postgres.process.kill('SIGTERM')
    expect(await postgres.exited).toBe(0)
    // Three server or CLI processes start one after another (tsx compiles each): allow for a busy machine.
  }, 120_000)
})
