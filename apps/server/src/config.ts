import { DEFAULT_RETENTION_MS, MAX_RETENTION_MS, MIN_RETENTION_MS, type RetentionMs } from '@ratchet/core'
import { parseApiKeys, type ApiKey } from './auth'
import { databaseTarget } from './database-url'
import { METRICS_MODES, type MetricsMode } from './metrics'
import { STRAY_ERROR_ATTRIBUTIONS, type StrayErrorAttribution } from './stray-errors'

/**
 * Where the example tasks live; the default of `RATCHET_TASKS`. Beside this module: the `.ts`
 * source in the repository, the compiled `.js` in a built or installed package.
 */
export const EXAMPLE_TASKS_MODULE = new URL(
  import.meta.url.endsWith('.ts') ? './example-tasks.ts' : './example-tasks.js',
  import.meta.url,
).pathname

export interface EnvConfig {
  port: number
  host: string
  /** Whether HOST was set explicitly. */
  hostFromEnv: boolean
  /** A SQLite file (`file:<path>`) or a PostgreSQL database (`postgres://…`). */
  databaseUrl: string
  /** Connections of the PostgreSQL pool (RATCHET_PG_POOL_SIZE); unused on SQLite. */
  pgPoolSize: number
  apiKeys: ApiKey[]
  logLevel: string
  tasksModule: string
  concurrency: number
  leaseMs: number
  pollIntervalMs: number
  drainMs: number
  shortSleepMs: number
  retentionMs: RetentionMs
  maxPayloadBytes: number
  sqliteSynchronous: 'normal' | 'full'
  attributeStrayErrors: StrayErrorAttribution
  /** Who may scrape `/metrics` (see `ServerOptions.metrics`). */
  metrics: MetricsMode
  /** OpenTelemetry spans (recorded once an SDK is registered). */
  tracing: boolean
  /** RATCHET_SECURE_COOKIES=true: the dashboard's session cookie is `Secure` (serve it over https). */
  secureCookies: boolean
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * Reads the server's configuration from the environment. Throws one error listing every
 * invalid variable with what was expected; never echoes API key values.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  const problems: string[] = []
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`)
      return fallback
    }
    return value
  }
  let apiKeys: ApiKey[] = []
  try {
    apiKeys = parseApiKeys(env.RATCHET_API_KEYS)
  } catch (error) {
    problems.push((error as Error).message)
  }
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  const synchronous = env.RATCHET_SQLITE_SYNCHRONOUS ?? 'normal'
  if (synchronous !== 'normal' && synchronous !== 'full') {
    problems.push(`RATCHET_SQLITE_SYNCHRONOUS must be "normal" or "full", got "${synchronous}"`)
  }
  const attribution = env.RATCHET_ATTRIBUTE_STRAY_ERRORS || 'after-first'
  if (!(STRAY_ERROR_ATTRIBUTIONS as readonly string[]).includes(attribution)) {
    problems.push(
      `RATCHET_ATTRIBUTE_STRAY_ERRORS must be one of ${STRAY_ERROR_ATTRIBUTIONS.join(', ')}, got "${attribution}"`,
    )
  }
  const metrics = env.RATCHET_METRICS || 'key'
  if (!(METRICS_MODES as readonly string[]).includes(metrics))
    problems.push(`RATCHET_METRICS must be one of ${METRICS_MODES.join(', ')}, got "${metrics}"`)
  const tracing = env.RATCHET_TRACING || 'on'
  if (tracing !== 'on' && tracing !== 'off')
    problems.push(`RATCHET_TRACING must be "on" or "off", got "${tracing}"`)
  const secure = env.RATCHET_SECURE_COOKIES || 'false'
  if (secure !== 'true' && secure !== 'false')
    problems.push(`RATCHET_SECURE_COOKIES must be "true" or "false", got "${secure}"`)
  const config: EnvConfig = {
    port: int('PORT', 8787, 0, 65535),
    host: env.HOST || '127.0.0.1',
    hostFromEnv: Boolean(env.HOST),
    databaseUrl: env.DATABASE_URL || 'file:./.data/ratchet.db',
    pgPoolSize: int('RATCHET_PG_POOL_SIZE', 10, 1, 1_000),
    apiKeys,
    logLevel,
    tasksModule: env.RATCHET_TASKS || EXAMPLE_TASKS_MODULE,
    concurrency: int('RATCHET_CONCURRENCY', 25, 1, 10_000),
    leaseMs: int('RATCHET_LEASE_MS', 30_000, 1_000),
    pollIntervalMs: int('RATCHET_POLL_INTERVAL_MS', 5_000, 100),
    drainMs: int('RATCHET_DRAIN_MS', 30_000, 0),
    shortSleepMs: int('RATCHET_SHORT_SLEEP_MS', 1_000, 0, 60_000),
    retentionMs: retention(env.RATCHET_RETENTION_MS, problems),
    maxPayloadBytes: int('RATCHET_MAX_PAYLOAD_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    sqliteSynchronous: synchronous === 'full' ? 'full' : 'normal',
    attributeStrayErrors: attribution === 'always' ? 'always' : 'after-first',
    metrics: (METRICS_MODES as readonly string[]).includes(metrics) ? (metrics as MetricsMode) : 'key',
    tracing: tracing !== 'off',
    secureCookies: secure === 'true',
  }
  try {
    databaseTarget(config.databaseUrl)
  } catch (error) {
    problems.push((error as Error).message)
  }
  if (problems.length > 0) throw new Error(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
  return config
}

/**
 * `RATCHET_RETENTION_MS`: an integer of ms from 1 s to 10 years, or `forever`. `0` is refused
 * rather than guessed: it reads as "delete at once" to some and "keep forever" to others.
 */
function retention(raw: string | undefined, problems: string[]): RetentionMs {
  if (raw === undefined || raw === '') return DEFAULT_RETENTION_MS
  if (raw === 'forever') return 'forever'
  const value = Number(raw)
  if (Number.isInteger(value) && value >= MIN_RETENTION_MS && value <= MAX_RETENTION_MS) return value
  problems.push(
    `RATCHET_RETENTION_MS must be an integer from ${MIN_RETENTION_MS} to ${MAX_RETENTION_MS} (ms) or "forever", got "${raw}"`,
  )
  return DEFAULT_RETENTION_MS
}

/**
 * The SQLite file of a `DATABASE_URL`: `file:path`, `sqlite:path` or a bare path. Throws for a
 * PostgreSQL URL (see `databaseTarget` for both kinds) or a URL without a file name.
 */
export function sqliteFilename(databaseUrl: string): string {
  const target = databaseTarget(databaseUrl)
  if (target.kind !== 'sqlite')
    throw new Error(`DATABASE_URL: ${target.redacted} is a PostgreSQL database, not a SQLite file`)
  return target.filename
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.')
}
