/**
 * Several real server processes (replicas) on one PostgreSQL database, for the multi-replica
 * tests: starts them on the tasks of `fixtures/multi-replica-tasks.ts`, reads the side effects their
 * steps wrote outside the servers, and checks the database for what every such test must hold
 * (nothing lost, nothing completed twice, every step's side effect once).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { createClient, type RatchetClient } from '@ratchet/client'
import type { PostgresTestFile } from '@ratchet/storage/testing'
import { startChildServer, type ChildServer } from './child-server'
import { EFFECT_STEPS, type tasks } from './fixtures/multi-replica-tasks'
import { API_KEY } from './helpers'

export const REPLICA_TASKS = join(import.meta.dirname, 'fixtures/multi-replica-tasks.ts')

export interface Replica extends ChildServer {
  name: string
  client: RatchetClient<typeof tasks>
}

export interface ReplicaOptions {
  /** The PostgreSQL database every replica shares. */
  databaseUrl: string
  /** Where the steps' side effects go (RATCHET_TEST_EFFECTS). */
  effectsDir: string
  /** The replica's name (RATCHET_TEST_REPLICA: its side-effect file is `<name>.log`). */
  name: string
  /** More environment (RATCHET_LEASE_MS, RATCHET_CONCURRENCY, ...), over the defaults below. */
  env?: Record<string, string>
}

/**
 * Starts one replica: `src/main.ts` in a child process on the shared database, with a short
 * safety poll (lease recovery runs on it) and every sleep written down (none passes in memory).
 */
export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const server = await startChildServer({
    databaseUrl: options.databaseUrl,
    tasksModule: REPLICA_TASKS,
    // Three replicas compiling their sources at once on a loaded machine take a while.
    startTimeoutMs: 60_000,
    env: {
      RATCHET_API_KEYS: `replicas:${API_KEY}`,
      RATCHET_TEST_EFFECTS: options.effectsDir,
      RATCHET_TEST_REPLICA: options.name,
      RATCHET_POLL_INTERVAL_MS: '500',
      RATCHET_SHORT_SLEEP_MS: '0',
      RATCHET_PG_POOL_SIZE: '5',
      RATCHET_DRAIN_MS: '2000',
      ...options.env,
    },
  })
  return {
    ...server,
    name: options.name,
    client: createClient<typeof tasks>({ url: server.url, apiKey: API_KEY }),
  }
}

/** Starts `count` replicas named `r0`, `r1`, ... at once; `env(i)` adds to replica i's environment. */
export function startReplicas(
  count: number,
  options: Omit<ReplicaOptions, 'name' | 'env'> & { env?: (index: number) => Record<string, string> },
): Promise<Replica[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      startReplica({ ...options, name: `r${i}`, env: options.env?.(i) ?? {} }),
    ),
  )
}

/** `<executionId> <step>` → how many times that step's body ran, per replica. */
export type Effects = Map<string, Map<string, number>>

/** Reads every replica's side-effect file. */
export function readEffects(effectsDir: string): Effects {
  const effects: Effects = new Map()
  if (!existsSync(effectsDir)) return effects
  for (const file of readdirSync(effectsDir)) {
    if (!file.endsWith('.log')) continue
    const replica = file.slice(0, -'.log'.length)
    for (const line of readFileSync(join(effectsDir, file), 'utf8').split('\n')) {
      if (line === '') continue
      const byReplica = effects.get(line) ?? new Map<string, number>()
      byReplica.set(replica, (byReplica.get(replica) ?? 0) + 1)
      effects.set(line, byReplica)
    }
  }
  return effects
}

/** How many times in all the step's body ran. */
export function timesRun(effects: Effects, key: string): number {
  let total = 0
  for (const n of effects.get(key)?.values() ?? []) total += n
  return total
}

export interface ExecutionRecord {
  id: string
  task_id: string
  status: string
  input: string
  output: string | null
  parent_id: string | null
  /** Runs so far (the column is named `attempt`). */
  runs: number
  failures: number
  recoveries: number
}

const TERMINAL = ['completed', 'failed', 'cancelled', 'timed_out']

/**
 * Waits until no execution in the database is unfinished, checking every 500 ms (a message
 * with the counts per status when `timeoutMs` passes). Throws at once when one ended in
 * anything but `completed`.
 */
export async function allFinished(pg: PostgresTestFile, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    const rows = await pg.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM executions GROUP BY status ORDER BY status',
    )
    last = rows.map((r) => `${r.status} ${r.n}`).join(', ')
    const count = (status: string) => rows.find((r) => r.status === status)?.n ?? 0
    const total = rows.reduce((sum, r) => sum + r.n, 0)
    const bad = TERMINAL.filter((s) => s !== 'completed').reduce((sum, s) => sum + count(s), 0)
    if (bad > 0) {
      const failed = await pg.query(
        `SELECT id, task_id, status, error FROM executions WHERE status IN ('failed', 'cancelled', 'timed_out') LIMIT 5`,
      )
      throw new Error(`executions ended unsuccessfully (${last}); e.g. ${JSON.stringify(failed)}`)
    }
    if (total === expected && count('completed') === expected) return
    if (Date.now() > deadline)
      throw new Error(`not every execution finished within ${timeoutMs} ms: ${last} (expected ${expected})`)
    await delay(500)
  }
}

/** Every execution in the database, with what the checks below need. */
export function executionRecords(pg: PostgresTestFile): Promise<ExecutionRecord[]> {
  return pg.query<ExecutionRecord>(
    `SELECT id::text, task_id, status, input, output, parent_id::text, attempt AS runs, failures, recoveries
       FROM executions`,
  )
}

/**
 * Problems with the executions' histories, at most `limit` of them: an execution whose
 * history does not hold exactly one transition to `completed`.
 */
export async function completedTwiceOrNever(pg: PostgresTestFile, limit = 10): Promise<unknown[]> {
  return pg.query(
    `SELECT e.id::text, e.task_id, count(h.seq)::int AS completions
       FROM executions e
       LEFT JOIN execution_history h
         ON h.execution_id = e.id AND h.event = 'status' AND h.to_status = 'completed'
      GROUP BY e.id, e.task_id
     HAVING count(h.seq) <> 1
      LIMIT $1`,
    [limit],
  )
}

/** Claims (transitions to `running`) per worker, from the history's `detail.worker`. */
export async function claimsPerWorker(pg: PostgresTestFile): Promise<Map<string, number>> {
  const rows = await pg.query<{ worker: string; n: number }>(
    `SELECT detail::json->>'worker' AS worker, count(*)::int AS n
       FROM execution_history
      WHERE event = 'status' AND to_status = 'running'
      GROUP BY 1`,
  )
  return new Map(rows.map((r) => [r.worker, r.n]))
}

/**
 * The side effects that are not exactly once: for every completed execution, each step of its
 * task (EFFECT_STEPS) whose body did not run exactly once, and every effect of an execution
 * the database does not hold. At most `limit`, as `<executionId> <step> ×<times>`.
 */
export function effectProblems(records: ExecutionRecord[], effects: Effects, limit = 10): string[] {
  const problems: string[] = []
  const expected = new Set<string>()
  for (const record of records) {
    for (const step of EFFECT_STEPS[record.task_id] ?? []) {
      const key = `${record.id} ${step}`
      expected.add(key)
      const times = timesRun(effects, key)
      if (times !== 1) problems.push(`${key} (${record.task_id}) ×${times}`)
    }
  }
  for (const key of effects.keys()) {
    if (!expected.has(key)) problems.push(`${key} unexpected ×${timesRun(effects, key)}`)
  }
  return problems.slice(0, limit)
}

/**
 * What each task of `fixtures/multi-replica-tasks.ts` returns for its input, given the payloads the
 * tests send: a signal `{ n: 3 * i }` to `signalled`, a wakeup `{ n: 7 * i }` to `woken`.
 */
export function expectedOutput(taskId: string, input: { i: number; k?: number; kids?: number }): unknown {
  const { i } = input
  switch (taskId) {
    case 'plain':
      return i + 1
    case 'leaf':
      return 10 * i + input.k!
    case 'family':
      return input.kids! * 10 * i + (input.kids! * (input.kids! - 1)) / 2
    case 'signalled':
      return 3 * i
    case 'woken':
      return 7 * i
    default:
      return i
  }
}

/** Completed executions whose output is not what their input says it must be (at most `limit`). */
export function outputProblems(records: ExecutionRecord[], limit = 10): string[] {
  const problems: string[] = []
  for (const record of records) {
    const want = expectedOutput(record.task_id, JSON.parse(record.input) as { i: number })
    const got = record.output === null ? undefined : (JSON.parse(record.output) as unknown)
    if (got !== want)
      problems.push(`${record.id} (${record.task_id} ${record.input}): ${record.output} ≠ ${String(want)}`)
  }
  return problems.slice(0, limit)
}

/** User + system CPU seconds a process used so far, from /proc (NaN where there is none). */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

/** Log lines of `level` (pino: 40 warn, 50 error) or above. */
export function linesAtOrAbove(
  server: { logs: Record<string, unknown>[] },
  level: number,
): Record<string, unknown>[] {
  return server.logs.filter((line) => typeof line.level === 'number' && line.level >= level)
}

/**
 * Whether the same call may succeed later: the database was unreachable (STORAGE_UNAVAILABLE,
 * 503, nothing written), or the server did not answer (a network error).
 */
export function isRetryable(error: unknown): boolean {
  const { code, status } = error as { code?: unknown; status?: unknown }
  return code === 'STORAGE_UNAVAILABLE' || status === 503 || error instanceof TypeError
}

/** How many top-level executions of each shape a mixed workload holds. */
export interface Mix {
  plain?: number
  /** Each with `kids` children (ctx.all of ctx.child). */
  family?: number
  /** Each sleeps durably between `napMs[0]` and `napMs[1]` ms. */
  napper?: number
  /** Each waits for a signal the test sends (`sendSignals`). */
  signalled?: number
  /** Each waits for a wakeup the test sends (`sendWakeups`). */
  woken?: number
  relay?: number
}

export interface Enqueued {
  id: string
  taskId: string
  input: { i: number; key?: string }
}

interface Batch {
  taskId: string
  send(client: RatchetClient<typeof tasks>): Promise<Enqueued[]>
}

/**
 * The mix as enqueueMany batches of at most `batchSize`, the shapes interleaved (batch k of
 * every shape, then batch k + 1, ...). Every execution gets its own `i`, from `first` on; a
 * woken one waits under the key `<tag>-<i>`.
 */
export function mixedBatches(
  mix: Mix,
  options: { first?: number; batchSize?: number; kids?: number; napMs?: [number, number]; tag?: string } = {},
): Batch[] {
  const { batchSize = 500, kids = 2, napMs = [200, 1_000], tag = 'wk' } = options
  let next = options.first ?? 0
  const perShape: Batch[][] = []
  const chunks = (count: number) => {
    const out: number[][] = []
    for (let done = 0; done < count; done += batchSize) {
      out.push(Array.from({ length: Math.min(batchSize, count - done) }, () => next++))
    }
    return out
  }
  const done = (taskId: string, inputs: Enqueued['input'][]) => (results: { executionId: string }[]) =>
    results.map((r, k) => ({ id: r.executionId, taskId, input: inputs[k]! }))
  perShape.push(
    chunks(mix.plain ?? 0).map((is) => ({
      taskId: 'plain',
      send: (c) =>
        c.tasks.plain.enqueueMany(is.map((i) => ({ input: { i } }))).then(
          done(
            'plain',
            is.map((i) => ({ i })),
          ),
        ),
    })),
  )
  perShape.push(
    chunks(mix.family ?? 0).map((is) => ({
      taskId: 'family',
      send: (c) =>
        c.tasks.family.enqueueMany(is.map((i) => ({ input: { i, kids } }))).then(
          done(
            'family',
            is.map((i) => ({ i, kids })),
          ),
        ),
    })),
  )
  perShape.push(
    chunks(mix.napper ?? 0).map((is) => ({
      taskId: 'napper',
      send: (c) => {
        const inputs = is.map((i) => ({ i, ms: napMs[0] + ((i * 7919) % (napMs[1] - napMs[0] + 1)) }))
        return c.tasks.napper.enqueueMany(inputs.map((input) => ({ input }))).then(done('napper', inputs))
      },
    })),
  )
  perShape.push(
    chunks(mix.signalled ?? 0).map((is) => ({
      taskId: 'signalled',
      send: (c) =>
        c.tasks.signalled.enqueueMany(is.map((i) => ({ input: { i } }))).then(
          done(
            'signalled',
            is.map((i) => ({ i })),
          ),
        ),
    })),
  )
  perShape.push(
    chunks(mix.woken ?? 0).map((is) => ({
      taskId: 'woken',
      send: (c) => {
        const inputs = is.map((i) => ({ i, key: `${tag}-${i}` }))
        return c.tasks.woken.enqueueMany(inputs.map((input) => ({ input }))).then(done('woken', inputs))
      },
    })),
  )
  perShape.push(
    chunks(mix.relay ?? 0).map((is) => ({
      taskId: 'relay',
      send: (c) =>
        c.tasks.relay.enqueueMany(is.map((i) => ({ input: { i } }))).then(
          done(
            'relay',
            is.map((i) => ({ i })),
          ),
        ),
    })),
  )
  const batches: Batch[] = []
  for (let k = 0; perShape.some((shape) => k < shape.length); k++) {
    for (const shape of perShape) if (k < shape.length) batches.push(shape[k]!)
  }
  return batches
}

/**
 * Sends the batches through the typed client, batch j to replica j mod n, `inflight` requests
 * at a time: every replica takes enqueues.
 */
export async function enqueueSpread(
  replicas: Replica[],
  batches: Batch[],
  inflight = 3,
): Promise<Enqueued[]> {
  const results: Enqueued[][] = []
  let next = 0
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < batches.length) {
        const j = next++
        results[j] = await batches[j]!.send(replicas[j % replicas.length]!.client)
      }
    }),
  )
  return results.flat()
}

/** The expected number of executions, children included, of what was enqueued. */
export function executionsOf(enqueued: Enqueued[], kids = 2): number {
  return enqueued.reduce((sum, e) => sum + (e.taskId === 'family' ? 1 + kids : 1), 0)
}

/**
 * Sends, through the API, round-robin over the replicas, the signal `go` `{ n: 3i }` to every
 * `signalled` execution and the wakeup `{ n: 7i }` to every `woken` one, each once it is seen
 * waiting (`executions.list` by task and status): a wakeup needs its wait registered. Resolves
 * when all were sent; `stop()` ends it early. Signals to executions that are not waiting yet are
 * the inbox's business, so some (`early` of them) go out at once.
 */
export async function sendSignalsAndWakeups(
  replicas: Replica[],
  enqueued: Enqueued[],
  options: { early?: number; stop?: () => boolean } = {},
): Promise<{ signals: number; wakeups: number }> {
  const signals = new Map(enqueued.filter((e) => e.taskId === 'signalled').map((e) => [e.id, e.input.i]))
  const wakeups = new Map(enqueued.filter((e) => e.taskId === 'woken').map((e) => [e.id, e.input]))
  let turn = 0
  const client = () => replicas[turn++ % replicas.length]!.client
  const sent = { signals: 0, wakeups: 0 }
  const sendSignal = async (id: string) => {
    const i = signals.get(id)
    if (i === undefined) return
    try {
      await client().executions.signal(id, 'go', { n: 3 * i })
      signals.delete(id)
      sent.signals++
    } catch (error) {
      // The database is unreachable (503, nothing written): send it again on a later round.
      if (!isRetryable(error)) throw error
    }
  }
  const sendWakeup = async (id: string) => {
    const input = wakeups.get(id)
    if (input === undefined) return
    try {
      await client().executions.wakeup(input.key!, { output: { n: 7 * input.i } })
      wakeups.delete(id)
      sent.wakeups++
    } catch (error) {
      // Its wait is not registered yet (NOT_FOUND), or the database is unreachable: again later.
      if ((error as { code?: unknown }).code !== 'NOT_FOUND' && !isRetryable(error)) throw error
    }
  }
  await inParallel([...signals.keys()].slice(0, options.early ?? 0), 8, sendSignal)
  // Until every one went out; a round that fails for an outage is simply the next round's work.
  while ((signals.size > 0 || wakeups.size > 0) && !options.stop?.()) {
    for (const [taskId, pending, send] of [
      ['signalled', signals, sendSignal],
      ['woken', wakeups, sendWakeup],
    ] as const) {
      if (pending.size === 0) continue
      let cursor: string | undefined
      do {
        let page
        try {
          page = await client().executions.list({
            taskId,
            status: 'waiting',
            limit: 500,
            ...(cursor ? { cursor } : {}),
          })
        } catch (error) {
          if (!isRetryable(error)) throw error
          break
        }
        await inParallel(
          page.items.map((e) => e.id).filter((id) => pending.has(id)),
          8,
          send,
        )
        cursor = page.nextCursor ?? undefined
      } while (cursor)
    }
    await delay(200)
  }
  return sent
}

async function inParallel<T>(items: T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await run(items[next++]!)
    }),
  )
}
