/**
 * The NOTIFY channels the adapter writes and listens to (payloads are empty: a listener only
 * learns that something may have changed, and PostgreSQL folds identical notices of one
 * transaction into one).
 */
/** Executions may have become claimable now (enqueue due now, wake, retry/release/recover…). */
export const WAKE_CHANNEL = 'ratchet_wake'
/** A status history row was appended (the change feed has news). */
export const CHANGE_CHANNEL = 'ratchet_change'

/**
 * For a statement that runs on its own (autocommit): a FROM item that sends `ratchet_change`,
 * and `ratchet_wake` when `wakeCondition` (SQL) holds, once, if `source` (a CTE of the
 * statement) has rows. Joined to the final SELECT of `source`, it leaves the rows unchanged;
 * with no rows nothing is sent.
 */
export function notifyWhenRows(source: string, wakeCondition = 'false'): string {
  return `(SELECT pg_notify('${CHANGE_CHANNEL}', ''),
                  CASE WHEN ${wakeCondition} THEN pg_notify('${WAKE_CHANNEL}', '') END
            WHERE EXISTS (SELECT 1 FROM ${source})) AS notified`
}
