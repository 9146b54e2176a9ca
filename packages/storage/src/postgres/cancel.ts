import { isTerminalStatus, type CancelOutcome } from '@ratchet/core'
import { cancelSubtree } from './cancel-tree'
import type { PostgresDatabase } from './database'
import { lockExecution, readExecution } from './get'
import { isStoredId } from './ids'
import { wake } from './wake'

/**
 * `cancel`: the execution and every unfinished descendant → cancelled, in one transaction,
 * the execution's row locked first (then the descendants in id order, see cancel-tree.ts). A
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
