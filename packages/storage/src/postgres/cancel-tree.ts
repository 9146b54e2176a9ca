import { CANCELLABLE_STATUSES, type CancelledExecution, type ExecutionStatus } from '@ratchet/core'
import { sqlStrings } from './columns'
import { statement, type Tx } from './database'
import { appendHistory } from './history-append'

const cancellable = sqlStrings(CANCELLABLE_STATUSES)

/**
 * The unfinished members of a tree, in walk order (breadth first, siblings by id, as SQLite's
 * recursive walk gives them): down `parent_id` (on `executions_parent_idx`) from `start`,
 * through finished members too (a finished child's spawned children may still run).
 */
function walk(start: string): string {
  return `WITH RECURSIVE tree(id, depth, path) AS (
       SELECT s.id, 0, ARRAY[s.id] FROM (${start}) s
       UNION ALL
       SELECT e.id, tree.depth + 1, tree.path || e.id FROM tree JOIN executions e ON e.parent_id = tree.id
     )
     SELECT e.id FROM tree JOIN executions e ON e.id = tree.id
      WHERE e.status IN (${cancellable})
      ORDER BY tree.depth, tree.path`
}

const SUBTREE = statement('cancel_walk_subtree', walk('SELECT $1::uuid AS id'))
const AWAITED = statement(
  'cancel_walk_awaited',
  walk(`SELECT id FROM executions WHERE parent_id = $1 AND wakes_parent = 1 AND status IN (${cancellable})`),
)

/** Locks the still-unfinished ones of `ids` in id order (the adapter's lock order). */
const LOCK = statement(
  'cancel_lock',
  `SELECT id, task_id AS "taskId", status, attempt AS run FROM executions
    WHERE id = ANY($1::uuid[]) AND status IN (${cancellable})
    ORDER BY id FOR NO KEY UPDATE`,
)

const CANCEL = statement(
  'cancel_apply',
  `UPDATE executions e
      SET status = 'cancelled', error = x.error, lease_owner = NULL, lease_expires_at = NULL,
          finished_at = $3, updated_at = $3
     FROM unnest($1::uuid[], $2::text[]) AS x(id, error)
    WHERE e.id = x.id AND e.status IN (${cancellable})`,
)

type Locked = { id: string; taskId: string; status: ExecutionStatus; run: number }

/**
 * Cancels the unfinished members of a tree inside `tx`, each with its history row, in walk
 * order. Under READ COMMITTED a running member may add a child (its `recordSteps` holds the
 * member's row lock) between the walk and our lock: so the walk is repeated after locking,
 * until it finds nobody new; once a member is locked and cancelled, nothing can be added
 * below it (recordSteps' fence wants it running).
 */
async function cancelTree(
  tx: Tx,
  walkStatement: typeof SUBTREE,
  startId: string,
  now: number,
  errorOf: (id: string) => string,
): Promise<CancelledExecution[]> {
  const locked = new Map<string, Locked>()
  let order: string[] = []
  for (;;) {
    order = (await tx.query<{ id: string }>(walkStatement, [startId])).rows.map((r) => r.id)
    const fresh = order.filter((id) => !locked.has(id))
    if (fresh.length === 0) break
    // Rows that finished since the walk are not locked, and drop out of the next walk.
    for (const row of (await tx.query<Locked>(LOCK, [fresh])).rows) locked.set(row.id, row)
  }
  const members = order.map((id) => locked.get(id)).filter((row) => row !== undefined)
  if (members.length === 0) return []
  await tx.query(CANCEL, [members.map((m) => m.id), members.map((m) => errorOf(m.id)), now])
  await appendHistory(
    tx,
    members.map((m) => ({
      executionId: m.id,
      at: now,
      fromStatus: m.status,
      toStatus: 'cancelled' as const,
      run: m.run,
      detail: `{"error":${errorOf(m.id)}}`,
    })),
  )
  return members.map((m) => ({ id: m.id, taskId: m.taskId, run: m.run, cancelledFrom: m.status }))
}

/** The execution `id` (with `error`) and its whole unfinished subtree (with `descendantError`). */
export function cancelSubtree(
  tx: Tx,
  id: string,
  now: number,
  error: string,
  descendantError: string,
): Promise<CancelledExecution[]> {
  return cancelTree(tx, SUBTREE, id, now, (member) => (member === id ? error : descendantError))
}

/**
 * The unfinished children `parentId` awaited (`ctx.child`), with their subtrees; spawned
 * children (`ctx.spawn`) outlive their parent.
 */
export function cancelAwaitedChildren(
  tx: Tx,
  parentId: string,
  now: number,
  error: string,
): Promise<CancelledExecution[]> {
  return cancelTree(tx, AWAITED, parentId, now, () => error)
}
