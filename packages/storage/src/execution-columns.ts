import type { ExecutionRow } from '@ratchet/core'

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
    ${p}wake_pending AS "wakePending", ${p}generation, ${p}debounce_key AS "debounceKey"`
}

/** The `ExecutionRow` of a row read as an array in `executionColumns` order (a driver's raw mode). */
export function executionRowOf(r: unknown[]): ExecutionRow {
  return {
    id: r[0],
    taskId: r[1],
    status: r[2],
    input: r[3],
    output: r[4],
    error: r[5],
    runs: r[6],
    failures: r[7],
    maxAttempts: r[8],
    recoveries: r[9],
    maxRecoveries: r[10],
    claimedAt: r[11],
    timeoutMs: r[12],
    backoff: r[13],
    priority: r[14],
    idempotencyKey: r[15],
    runAt: r[16],
    leaseOwner: r[17],
    leaseExpiresAt: r[18],
    createdAt: r[19],
    updatedAt: r[20],
    startedAt: r[21],
    finishedAt: r[22],
    parentId: r[23],
    rootId: r[24],
    wakesParent: r[25],
    deadlineAt: r[26],
    wakePending: r[27],
    generation: r[28],
    debounceKey: r[29],
  } as ExecutionRow
}
