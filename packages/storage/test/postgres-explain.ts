/**
 * EXPLAIN of the statements the PostgreSQL adapter really runs: every pg client of the process
 * records its statements while `plansOf` runs a call, then each is explained with EXPLAIN
 * ANALYZE (in a transaction rolled back) under the custom plan and under the generic plan (what
 * a named statement may settle on after five runs). Used by postgres-query-plans.test.ts.
 */
import pg from 'pg'
import { RATCHET_TABLES } from '@ratchet/storage/testing'

interface Executed {
  text: string
  values: unknown[]
}

/** Every statement any pg client of this file runs, while `recording` is on. */
const executed: Executed[] = []
let recording = false
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const [first, second] = args
  if (recording) {
    if (typeof first === 'string') executed.push({ text: first, values: Array.isArray(second) ? second : [] })
    else if (first && typeof first === 'object' && 'text' in first) {
      const config = first as { text: string; values?: unknown[] }
      executed.push({ text: config.text, values: config.values ?? (Array.isArray(second) ? second : []) })
    }
  }
  return query.apply(this, args)
} as typeof pg.Client.prototype.query

/** The statements `run` executes (transaction control and notices left out). */
async function statementsOf(run: () => Promise<unknown>): Promise<Executed[]> {
  const from = executed.length
  recording = true
  try {
    await run()
  } finally {
    recording = false
  }
  return executed.slice(from).filter((e) => /^\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b/i.test(e.text))
}

interface Scan {
  node: string
  relation: string | undefined
  index: string | undefined
  /** Rows the node read: returned plus removed by its filter, over all its loops. */
  examined: number
}

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Actual Rows': number
  'Actual Loops': number
  'Rows Removed by Filter'?: number
  'Rows Removed by Index Recheck'?: number
  Plans?: PlanNode[]
}

function scansOf(node: PlanNode, into: Scan[] = []): Scan[] {
  if (node['Relation Name'] !== undefined || node['Index Name'] !== undefined) {
    const removed = (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)
    into.push({
      node: node['Node Type'],
      relation: node['Relation Name'],
      index: node['Index Name'],
      examined: (node['Actual Rows'] + removed) * node['Actual Loops'],
    })
  }
  for (const child of node.Plans ?? []) scansOf(child, into)
  return into
}

/** A bound value (the adapter binds strings, numbers, booleans, null and arrays of them) as an SQL literal. */
type Bound = string | number | boolean | null | undefined | Bound[]
function literal(client: pg.Client, value: Bound): string {
  if (value === null || value === undefined) return 'NULL'
  if (Array.isArray(value)) {
    const items = value.map((v) =>
      v === null ? 'NULL' : `"${String(v).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`,
    )
    return client.escapeLiteral(`{${items.join(',')}}`)
  }
  return client.escapeLiteral(String(value))
}

/** The scans of `statement` as it runs now, under the custom or the generic plan; its effects rolled back. */
async function explain(
  explainer: pg.Client,
  { text, values }: Executed,
  mode: 'custom' | 'generic',
): Promise<Scan[]> {
  await explainer.query('BEGIN')
  try {
    await explainer.query(`SET LOCAL plan_cache_mode = force_${mode}_plan`)
    await explainer.query(`PREPARE explained AS ${text}`)
    // EXECUTE takes its arguments as literals (a utility statement has no bind parameters).
    const args = (values as Bound[]).map((v) => literal(explainer, v)).join(', ')
    const { rows } = await explainer.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained${args ? `(${args})` : ''}`,
    )
    return scansOf(rows[0]!['QUERY PLAN'][0].Plan)
  } finally {
    await explainer.query('ROLLBACK')
    await explainer.query('DEALLOCATE ALL')
  }
}

/** One statement's plan under one plan mode. */
export interface Plan {
  mode: 'custom' | 'generic'
  text: string
  scans: Scan[]
}

/** The plans of every statement `run` executes, under both modes, explained on `explainer`. */
export async function plansOf(explainer: pg.Client, run: () => Promise<unknown>): Promise<Plan[]> {
  const plans: Plan[] = []
  for (const { text, values } of await statementsOf(run))
    for (const mode of ['custom', 'generic'] as const)
      plans.push({ mode, text, scans: await explain(explainer, { text, values }, mode) })
  return plans
}

/**
 * Per plan mode, the rows of `relation` (every Ratchet table when omitted: not the catalogs, whose
 * size is the cluster's) read by all the statements.
 */
export function examined(plans: Plan[], relation?: string): Record<Plan['mode'], number> {
  const total = { custom: 0, generic: 0 }
  for (const plan of plans)
    for (const scan of plan.scans)
      if (relation === undefined ? RATCHET_TABLES.includes(scan.relation ?? '') : scan.relation === relation)
        total[plan.mode] += scan.examined
  return total
}

/**
 * `relation: the start of the statement (mode)` for every sequential scan of a Ratchet table this
 * file fills (not the catalogs; execution_signals stays empty: a scan of it is the planner's right
 * choice here).
 */
export const seqScans = (plans: Plan[]) =>
  plans.flatMap((p) =>
    p.scans
      .filter(
        (s) =>
          s.node === 'Seq Scan' &&
          RATCHET_TABLES.includes(s.relation ?? '') &&
          s.relation !== 'execution_signals' &&
          // One row per task an operator paused or resumed: read whole, it is smaller than an index probe.
          s.relation !== 'task_queues',
      )
      .map((s) => `${s.relation}: ${p.text.replace(/\s+/g, ' ').slice(0, 80)} (${p.mode})`),
  )
export const indexes = (plans: Plan[]) =>
  new Set(plans.flatMap((p) => p.scans.map((s) => s.index)).filter(Boolean))
export const most = (counts: Record<Plan['mode'], number>) => Math.max(counts.custom, counts.generic)
