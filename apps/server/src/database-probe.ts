import { outageReason } from './error-mapping'

export interface DatabaseProbeOptions {
  /** One round trip to the database (e.g. `SELECT 1`); rejects when it cannot be reached. */
  ping: () => Promise<unknown>
  /** How long an answer is reused: readiness probes of many checkers cost one ping. @default 1_000 */
  cacheMs?: number
  /** A ping slower than this counts as unreachable. @default 2_000 */
  timeoutMs?: number
}

/**
 * Whether a database that can go away while the server lives (PostgreSQL) answers right now,
 * for `/readyz`. One ping at a time, its answer reused for `cacheMs`. Failure semantics: never
 * throws; `check` resolves with why the database is unreachable, or `undefined`.
 */
export class DatabaseProbe {
  private readonly ping: () => Promise<unknown>
  private readonly cacheMs: number
  private readonly timeoutMs: number
  private last: { at: number; reason: string | undefined } | undefined
  private pending: Promise<string | undefined> | undefined

  constructor(options: DatabaseProbeOptions) {
    this.ping = options.ping
    this.cacheMs = options.cacheMs ?? 1_000
    this.timeoutMs = options.timeoutMs ?? 2_000
  }

  /** Why the database is unreachable, or `undefined` when it answered. */
  check(): Promise<string | undefined> {
    if (this.last && Date.now() - this.last.at < this.cacheMs) return Promise.resolve(this.last.reason)
    return (this.pending ??= this.run().finally(() => (this.pending = undefined)))
  }

  private async run(): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined
    let reason: string | undefined
    try {
      await Promise.race([
        this.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs)
        }),
      ])
    } catch (error) {
      reason = `the database is unreachable: ${outageReason(error)}`
    } finally {
      clearTimeout(timer)
    }
    this.last = { at: Date.now(), reason }
    return reason
  }
}
