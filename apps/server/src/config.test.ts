import { describe, expect, it } from 'vitest'
import { configFromEnv, isLoopback, sqliteFilename } from './config'
import { databaseTarget } from './database-url'

describe('configFromEnv', () => {
  it('has working defaults', () => {
    const config = configFromEnv({})
    expect(config).toMatchObject({
      port: 8787,
      host: '127.0.0.1',
      hostFromEnv: false,
      databaseUrl: 'file:./.data/ratchet.db',
      apiKeys: [],
      logLevel: 'info',
      concurrency: 25,
      leaseMs: 30_000,
      drainMs: 30_000,
      maxPayloadBytes: 1024 * 1024,
      sqliteSynchronous: 'normal',
      attributeStrayErrors: 'after-first',
      retentionMs: 7 * 24 * 3_600_000,
      metrics: 'key',
      tracing: true,
      secureCookies: false,
    })
    expect(config.tasksModule).toMatch(/example-tasks\.ts$/)
  })

  it('lists every invalid variable with what was expected, never a key value', () => {
    const secret = 'short'
    let message = ''
    try {
      configFromEnv({
        PORT: '99999',
        RATCHET_CONCURRENCY: 'many',
        LOG_LEVEL: 'loud',
        RATCHET_API_KEYS: `ci:${secret}`,
        RATCHET_ATTRIBUTE_STRAY_ERRORS: 'sometimes',
        RATCHET_RETENTION_MS: '0',
        RATCHET_METRICS: 'open',
        RATCHET_TRACING: 'maybe',
      })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('PORT must be an integer from 0 to 65535, got "99999"')
    expect(message).toContain('RATCHET_CONCURRENCY must be an integer')
    expect(message).toContain('LOG_LEVEL must be one of')
    expect(message).toContain('RATCHET_METRICS must be one of off, key, public, got "open"')
    expect(message).toContain('RATCHET_TRACING must be "on" or "off", got "maybe"')
    expect(message).toContain('RATCHET_API_KEYS entry 1 ("ci"): the secret must be at least 16 characters')
    expect(message).toContain(
      'RATCHET_ATTRIBUTE_STRAY_ERRORS must be one of after-first, always, got "sometimes"',
    )
    expect(message).toContain(
      'RATCHET_RETENTION_MS must be an integer from 1000 to 315360000000 (ms) or "forever", got "0"',
    )
    expect(message).not.toContain(secret)
  })

  it('reads RATCHET_RETENTION_MS as ms or forever', () => {
    expect(configFromEnv({ RATCHET_RETENTION_MS: '3600000' }).retentionMs).toBe(3_600_000)
    expect(configFromEnv({ RATCHET_RETENTION_MS: 'forever' }).retentionMs).toBe('forever')
  })
})

describe('sqliteFilename', () => {
  it('accepts file:, sqlite: and bare paths', () => {
    expect(sqliteFilename('file:./.data/r.db')).toBe('./.data/r.db')
    expect(sqliteFilename('sqlite:///var/lib/r.db')).toBe('/var/lib/r.db')
    expect(sqliteFilename('/tmp/r.db')).toBe('/tmp/r.db')
  })

  it('refuses a PostgreSQL URL, which is no file', () => {
    expect(() => sqliteFilename('postgres://localhost/db')).toThrow(
      /is a PostgreSQL database, not a SQLite file/,
    )
  })
})

describe('databaseTarget', () => {
  it('tells SQLite files from PostgreSQL databases', () => {
    expect(databaseTarget('file:./.data/r.db')).toEqual({ kind: 'sqlite', filename: './.data/r.db' })
    expect(databaseTarget('postgres://ratchet:s3cret@db:5432/ratchet')).toEqual({
      kind: 'postgres',
      url: 'postgres://ratchet:s3cret@db:5432/ratchet',
      redacted: 'postgres://ratchet:***@db:5432/ratchet',
    })
    expect(databaseTarget('postgresql://db/ratchet?sslmode=require')).toMatchObject({ kind: 'postgres' })
  })

  it('refuses a PostgreSQL URL without a database or that does not parse, without echoing its password', () => {
    expect(() => databaseTarget('postgres://u:s3cret@db:5432/')).toThrow(
      'DATABASE_URL: "postgres://u:***@db:5432/" names no database',
    )
    expect(() => databaseTarget('postgres://u:s3cret@db:port/x')).toThrow(/is not a valid PostgreSQL URL/)
    expect(() => databaseTarget('postgres://u:s3cret@db:port/x')).not.toThrow(/s3cret/)
  })

  it('configFromEnv accepts postgres:// with RATCHET_PG_POOL_SIZE (default 10)', () => {
    expect(configFromEnv({ DATABASE_URL: 'postgres://localhost/ratchet' })).toMatchObject({
      databaseUrl: 'postgres://localhost/ratchet',
      pgPoolSize: 10,
    })
    expect(configFromEnv({ RATCHET_PG_POOL_SIZE: '3' }).pgPoolSize).toBe(3)
    expect(() => configFromEnv({ RATCHET_PG_POOL_SIZE: '0' })).toThrow(
      'RATCHET_PG_POOL_SIZE must be an integer from 1 to 1000, got "0"',
    )
  })
})

describe('isLoopback', () => {
  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopback)).toBe(true)
    expect(['0.0.0.0', '::', '10.0.0.5'].some(isLoopback)).toBe(false)
  })
})
