import { isTerminalStatus, type CancelOutcome } from '@ratchet/core'
import { cancelSubtree } from './cancel-tree'
import { statement, type PostgresDatabase } from './database'
import { lockExecution, readExecution } from './get'
import { isStoredId } from './ids'
import { wake } from './wake'

/** The parent of an execution: set at enqueue and never changed, so read without a lock. */
const PARENT_OF = statement(
  'cancel_parent_of',
  `SELECT parent_id AS "parentId" FROM executions WHERE id = $1`,
)

/**
 * The execution and its parent, locked in id order (the adapter's lock order) before anything
 * else: the cancel writes into the parent (`wake`), as a child's settlement does, which locks
 * both the same way. Locked child first, the two would deadlock over a child cancelled as it
 * completes.
 */
const LOCK_WITH_PARENT = statement(
  'cancel_lock_with_parent',
  `SELECT id FROM executions WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
)

/**
 * `cancel`: the execution and every unfinished descendant → cancelled, in one transaction,
 * the execution's row and its parent's locked first, in id order (then the descendants in id
 * order, see cancel-tree.ts). A
 * waiting parent of the cancelled execution that is not itself cancelled is woken, so its
 * `ctx.child` rejects. A finished execution is left alone, and so is what it started (a
 * spawned child lives on). `undefined` for an unknown id. Failure semantics: all or nothing;
 * `StorageUnavailableError` when the database is unreachable.
 */
export async function cancel(
  database: PostgresDatabase,
  id: string,
  now: number,
  error: string,
  descendantError = error,
): Promise<CancelOutcome | undefined> {
  if (!isStoredId(id)) return undefined
  return database.transaction(async (tx) => {
    const parent = (await tx.query<{ parentId: string | null }>(PARENT_OF, [id])).rows[0]
    if (!parent) return undefined
    if (parent.parentId !== null) await tx.query(LOCK_WITH_PARENT, [[id, parent.parentId]])
    const before = await lockExecution(tx, id)
    if (!before) return undefined
    if (isTerminalStatus(before.status)) return { row: before, cancelledFrom: null, descendants: [] }
    const cancelled = await cancelSubtree(tx, id, now, error, descendantError)
    const self = cancelled.find((c) => c.id === id)
    if (!self) return { row: before, cancelledFrom: null, descendants: [] }
    if (before.parentId !== null && before.wakesParent === 1)
      await wake(tx, before.parentId, now, `child ${id} cancelled`)
    return {
      row: (await readExecution(tx, id))!,
      cancelledFrom: self.cancelledFrom,
      descendants: cancelled.filter((c) => c.id !== id),
    }
  })
}
