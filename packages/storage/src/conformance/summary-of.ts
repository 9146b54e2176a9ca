import type { ExecutionRow, ExecutionSummaryRow } from '@ratchet/core'

/** The summary `list` must return for a stored row: its columns but the payloads, the error reduced. */
export function summaryOf(row: ExecutionRow): ExecutionSummaryRow {
  let error: string | null = null
  if (row.error !== null) {
    const parsed = JSON.parse(row.error) as { name?: string; message?: string; code?: string }
    error = JSON.stringify({
      name: parsed.name ?? null,
      message: parsed.message ?? null,
      code: parsed.code ?? null,
    })
  }
  return {
    id: row.id,
    taskId: row.taskId,
    status: row.status,
    error,
    runs: row.runs,
    failures: row.failures,
    maxAttempts: row.maxAttempts,
    recoveries: row.recoveries,
    maxRecoveries: row.maxRecoveries,
    timeoutMs: row.timeoutMs,
    priority: row.priority,
    idempotencyKey: row.idempotencyKey,
    runAt: row.runAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    parentId: row.parentId,
    rootId: row.rootId,
    deadlineAt: row.deadlineAt,
  }
}
