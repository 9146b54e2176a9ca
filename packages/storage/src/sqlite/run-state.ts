import { and, asc, eq, isNull, sql } from 'drizzle-orm'
import type { ChildState, RunState, StepWrite, StepWriteResult } from '@ratchet/core'
import type { SqliteDb } from './database'
import { prepareInsertExecution } from './enqueue'
import type { AppendHistory } from './history'
import { executionSignals, executionSteps } from './schema'

/**
 * `loadRunState`: the record, the unconsumed inbox and the states of the children the record
 * still waits for, for a replay. A child the run already consumed is in the record itself
 * (done or failed), so its row is not read again.
 */
export function prepareLoadRunState(db: SqliteDb) {
  const steps = db
    .select()
    .from(executionSteps)
    .where(eq(executionSteps.executionId, sql.placeholder('id')))
    .orderBy(asc(executionSteps.position))
    .prepare()
  const inbox = db
    .select({
      seq: executionSignals.seq,
      executionId: executionSignals.executionId,
      name: executionSignals.name,
      payload: executionSignals.payload,
      createdAt: executionSignals.createdAt,
      consumedBy: executionSignals.consumedBy,
    })
    .from(executionSignals)
    .where(and(eq(executionSignals.executionId, sql.placeholder('id')), isNull(executionSignals.consumedBy)))
    .orderBy(asc(executionSignals.seq))
    .prepare()
  const children = db.$client.prepare<[string], ChildState>(
    `SELECT c.id, c.status, c.output, c.error FROM execution_steps s JOIN executions c ON c.id = s.child_id
      WHERE s.execution_id = ? AND s.kind = 'child' AND s.status = 'waiting'`,
  )
  const run = db.$client.transaction((id: string): RunState => ({
    steps: steps.all({ id }),
    inbox: inbox.all({ id }),
    children: children.all(id),
  }))
  return (id: string) => run(id)
}

/**
 * `recordSteps`: each write, fenced by its run (the execution must still be running
 * under it), upserts one step record at its position and, in the same transaction, marks
 * the signal it consumed and enqueues the child it started. A failed fence writes nothing.
 */
export function prepareRecordSteps(db: SqliteDb, appendHistory: AppendHistory) {
  const client = db.$client
  const fence = client.prepare<[string, number], { rootId: string | null; status: string }>(
    `SELECT root_id AS rootId, status FROM executions WHERE id = ? AND attempt = ? AND status = 'running'`,
  )
  const upsert = client.prepare(
    `INSERT INTO execution_steps (execution_id, position, name, kind, status, value, error, wake_at, child_id,
                                  signal_name, wakeup_key, created_at, completed_at)
     VALUES (@executionId, @position, @name, @kind, @status, @value, @error, @wakeAt, @childId,
             @signalName, @wakeupKey, @now, @completedAt)
     ON CONFLICT (execution_id, position) DO UPDATE SET
       status = excluded.status, value = excluded.value, error = excluded.error, wake_at = excluded.wake_at,
       child_id = coalesce(excluded.child_id, execution_steps.child_id), completed_at = excluded.completed_at
     WHERE execution_steps.status = 'waiting'`,
  )
  const consume = client.prepare<[{ name: string; now: number; seq: number; id: string }]>(
    `UPDATE execution_signals SET consumed_by = @name, consumed_at = @now
      WHERE seq = @seq AND execution_id = @id AND consumed_by IS NULL`,
  )
  const insertChild = prepareInsertExecution(db)
  const keyHolder = client.prepare<[string], { executionId: string; position: number }>(
    `SELECT execution_id AS executionId, position FROM execution_steps WHERE wakeup_key = ?`,
  )
  const run = client.transaction((writes: readonly StepWrite[], now: number): StepWriteResult[] => {
    // Nothing in this transaction changes an execution's status or runs, so one fence read
    // per run serves all its writes (a fan-out writes dozens at once).
    const owners = new Map<string, { rootId: string | null } | null>()
    return writes.map((w): StepWriteResult => {
      const fenceKey = `${w.executionId}:${w.run}`
      let owner = owners.get(fenceKey)
      if (owner === undefined) owners.set(fenceKey, (owner = fence.get(w.executionId, w.run) ?? null))
      if (!owner) return 'stale'
      const { step } = w
      if (step.wakeupKey !== null) {
        // Checked first: a unique-index error would abort the whole batch.
        const holder = keyHolder.get(step.wakeupKey)
        if (holder && (holder.executionId !== w.executionId || holder.position !== step.position))
          return 'conflict'
      }
      const finished = step.status !== 'waiting'
      // Only a waiting record is updated: one completed meanwhile (an external wakeup) is not
      // overwritten from a stale read; the attempt is retried and its replay sees it.
      if (
        upsert.run({ ...step, executionId: w.executionId, now, completedAt: finished ? now : null })
          .changes === 0
      ) {
        return 'superseded'
      }
      if (w.consumeSignalSeq !== undefined)
        consume.run({ name: step.name, now, seq: w.consumeSignalSeq, id: w.executionId })
      if (w.child) {
        const child = {
          ...w.child,
          rootId: w.child.rootId ?? owner.rootId ?? w.executionId,
          parentId: w.executionId,
        }
        if (insertChild(child, now)) {
          appendHistory({
            executionId: child.id,
            at: now,
            fromStatus: null,
            toStatus: 'queued',
            run: 0,
            detail: JSON.stringify({ parentId: w.executionId }),
          })
        }
      }
      // A child's end, recorded by its parent's run, gets no history row: the child's own history
      // has it, and the settlement that records it for a parent writes none either.
      if (step.kind === 'child' && finished && !w.child) return 'written'
      appendHistory({
        executionId: w.executionId,
        at: now,
        fromStatus: 'running',
        toStatus: 'running',
        run: w.run,
        detail: JSON.stringify({
          kind: step.kind,
          status: step.status,
          ...(step.childId ? { childId: step.childId } : {}),
          ...(step.wakeAt !== null ? { wakeAt: step.wakeAt } : {}),
          ...(step.error ? { error: JSON.parse(step.error) as unknown } : {}),
        }),
        event:
          step.kind === 'step'
            ? 'step'
            : step.kind === 'signal'
              ? 'signal'
              : step.kind === 'sleep' || step.kind === 'wakeup'
                ? 'wait'
                : 'child',
        name: step.name,
      })
      return 'written'
    })
  })
  return (writes: readonly StepWrite[], now: number) => (writes.length === 0 ? [] : run(writes, now))
}
