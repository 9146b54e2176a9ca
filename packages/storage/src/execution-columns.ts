/**
 * The select list of a whole `ExecutionRow`, in the port's names: one home, so that every
 * statement returning executions returns them alike, on both dialects (plain SQL, quoted
 * aliases). `prefix` qualifies the columns (`e.`) where a statement joins other tables.
 */
export function executionColumns(prefix = ''): string {
  const p = prefix
  return `${p}id, ${p}task_id AS "taskId", ${p}status, ${p}input, ${p}output, ${p}error, ${p}attempt AS runs,
    ${p}failures, ${p}max_attempts AS "maxAttempts", ${p}recoveries, ${p}max_recoveries AS "maxRecoveries",
    ${p}claimed_at AS "claimedAt", ${p}timeout_ms AS "timeoutMs", ${p}backoff, ${p}priority,
    ${p}idempotency_key AS "idempotencyKey", ${p}run_at AS "runAt", ${p}lease_owner AS "leaseOwner",
    ${p}lease_expires_at AS "leaseExpiresAt", ${p}created_at AS "createdAt", ${p}updated_at AS "updatedAt",
    ${p}started_at AS "startedAt", ${p}finished_at AS "finishedAt", ${p}parent_id AS "parentId",
    ${p}root_id AS "rootId", ${p}wakes_parent AS "wakesParent", ${p}deadline_at AS "deadlineAt",
    ${p}wake_pending AS "wakePending", ${p}generation`
}
