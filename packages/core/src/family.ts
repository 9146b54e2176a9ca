import { PARENT_ENDED_ERROR, SETTLED_STATUS, type RunningAttempt } from './attempt'
import { childOutcome } from './child-outcome'
import type { Settlement, StepWrite } from './storage'

/** The transitions that end an execution. */
const ENDS: Record<Settlement['transition'], boolean> = {
  park: false,
  continue: false,
  complete: true,
  retry: false,
  release: false,
  fail: true,
  time_out: true,
}

/** Most entries of `Family.awaitedAt`; past it the oldest go (their parents record the outcome). */
const MAX_AWAITED_CHILDREN = 100_000

/**
 * @internal What a settlement owes the execution's family, added before it is written: the
 * parent awaiting it is woken when it ends, with its outcome recorded in the parent's record
 * when this process knows where that is; the children it awaited that are still running end
 * with it.
 */
export class Family {
  /**
   * Where the parent of each awaited child started in this process recorded it (the child's
   * step), by child id: the settlement that ends the child records its outcome there too, in
   * its own transaction, so the parent does not write it when it resumes (see
   * `Settlement.parentRecord`). A child this process does not know (started before a restart,
   * evicted, or rerun: see `forget`) is recorded by its parent's run instead, when it first
   * sees the child's end.
   */
  private readonly awaitedAt = new Map<string, { parentId: string; position: number }>()

  /**
   * Adds the family's part to `settlement` (and returns it). Only an execution that started
   * children in this attempt, or ran before (a resume: children of earlier attempts), may have
   * any; a first attempt without children skips the lookup.
   */
  link(attempt: RunningAttempt, settlement: Settlement): Settlement {
    const { row } = attempt
    const ends = ENDS[settlement.transition]
    if (row.wakesParent === 1 && row.parentId !== null) {
      settlement.wakeParentId = row.parentId
      const at = ends ? this.awaitedAt.get(row.id) : undefined
      const outcome =
        at &&
        childOutcome({
          id: row.id,
          status: SETTLED_STATUS[settlement.transition],
          output: settlement.transition === 'complete' ? settlement.output : null,
          error: 'error' in settlement ? settlement.error : null,
        })
      if (at && outcome) settlement.parentRecord = { ...at, outcome }
    }
    if ((ends || settlement.transition === 'continue') && (attempt.startedChildren || row.runs > 1))
      settlement.cancelChildren = { error: PARENT_ENDED_ERROR }
    return settlement
  }

  /** A child record was written: remember where, for the child's settlement. */
  noteAwaited(write: StepWrite): void {
    if (write.child === undefined || write.step.kind !== 'child') return
    if (this.awaitedAt.size >= MAX_AWAITED_CHILDREN) {
      const oldest = this.awaitedAt.keys().next()
      if (!oldest.done) this.awaitedAt.delete(oldest.value)
    }
    this.awaitedAt.set(write.child.id, { parentId: write.executionId, position: write.step.position })
  }

  /** The child's settlement, with its outcome in the parent's record, was written. */
  recorded(childId: string): void {
    this.awaitedAt.delete(childId)
  }

  /**
   * The executions were rerun (`executions.retry`): their next end is not recorded in their
   * parents' records by their settlements. A parent may be running on a record it loaded while
   * the child had ended before (a cancel, a deadline, a lost budget, which write nothing there)
   * and be about to consume that end: its own write must be the one that lands, or the record
   * would say what its run did not see. The parent's run records the child's next end.
   */
  forget(ids: Iterable<string>): void {
    for (const id of ids) this.awaitedAt.delete(id)
  }
}
