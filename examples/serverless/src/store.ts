/**
 * The app's data, in memory for the example (a real app has its own database). Writes are
 * keyed by the execution, so a step that runs again after a lost invocation writes once.
 */
export const store = {
  /** Accounts by email. */
  accounts: new Map<string, { accountId: string; email: string; verified: boolean }>(),
  /** Emails sent, keyed `${executionId}:${kind}`: a repeated step sends nothing twice. */
  emails: new Map<string, { to: string; kind: 'verify' | 'welcome' | 'trial-ended' }>(),
}
