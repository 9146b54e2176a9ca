/**
 * docker-compose.yml, parsed (no Docker engine runs the tests): PostgreSQL with a healthcheck and
 * a volume; several server replicas built from the repository's Dockerfile, running the CLI entry
 * the build produces, waiting for a healthy database and pointed at it; the single-process SQLite
 * server under its own profile. The environment each server gets is one `configFromEnv` accepts.
 * (scripts/container-smoke.sh builds the image and runs the command named here for real.)
 */
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { configFromEnv } from '../src/config'
import { databaseTarget } from '../src/database-url'

const ROOT = resolve(import.meta.dirname, '../../..')

interface Service {
  image?: string
  build?: string | { context: string; dockerfile?: string }
  command?: string[]
  profiles?: string[]
  deploy?: { replicas?: number }
  ports?: string[]
  depends_on?: Record<string, { condition: string }>
  environment?: Record<string, string>
  volumes?: string[]
  healthcheck?: { test: string[]; interval?: string; retries?: number }
  stop_grace_period?: string
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>
  volumes: Record<string, unknown>
}
const { postgres, ratchet, 'ratchet-sqlite': sqlite } = compose.services

/**
 * Compose's interpolation, as `docker compose up` does it with nothing set but the required
 * RATCHET_API_KEYS: `${VAR:-default}` is the default, `${VAR:?message}` the given value.
 */
function interpolate(value: string): string {
  return value.replace(
    /\$\{(\w+)(?::([-?])([^}]*))?\}/g,
    (_match, name: string, kind?: string, rest?: string) => {
      if (name === 'RATCHET_API_KEYS') return 'admin:0123456789abcdef0123'
      if (kind === '-') return rest ?? ''
      throw new Error(`${name} has no default in docker-compose.yml`)
    },
  )
}
const environment = (service: Service) =>
  Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]))

/** `name:/path` → { name, path }. */
const mounts = (service: Service) =>
  (service.volumes ?? []).map((v) => {
    const [name, path] = v.split(':')
    return { name: name!, path: path! }
  })

/** The CMD of the Dockerfile's last stage, as JSON. */
function dockerfileCmd(): string[] {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n')
  const cmd = lines.filter((line) => line.startsWith('CMD ')).at(-1)!
  return JSON.parse(cmd.slice('CMD '.length)) as string[]
}

const seconds = (duration: string | undefined) => {
  const match = /^(\d+)(ms|s|m)?$/.exec(String(duration))
  return match ? Number(match[1]) * { ms: 0.001, s: 1, m: 60 }[(match[2] ?? 's') as 'ms' | 's' | 'm'] : NaN
}

describe('docker-compose.yml', () => {
  it('has PostgreSQL 15 with a healthcheck and its data on a named volume', () => {
    expect(postgres?.image).toMatch(/^postgres:15(\.|$)/)
    expect(postgres?.healthcheck?.test.join(' ')).toMatch(/pg_isready -U ratchet -d ratchet/)
    expect(mounts(postgres!)).toContainEqual({ name: 'postgres-data', path: '/var/lib/postgresql/data' })
    expect(compose.volumes).toHaveProperty('postgres-data')
    expect(environment(postgres!)).toMatchObject({ POSTGRES_USER: 'ratchet', POSTGRES_DB: 'ratchet' })
    expect(postgres?.profiles).toBeUndefined() // started by a plain `docker compose up`
  })

  it('runs several replicas of the server built from the Dockerfile, with the CLI entry the build makes', () => {
    expect(ratchet?.profiles).toBeUndefined()
    expect(ratchet?.deploy?.replicas).toBeGreaterThanOrEqual(2)
    const context = typeof ratchet?.build === 'string' ? ratchet.build : ratchet?.build?.context
    const dockerfile = typeof ratchet?.build === 'object' ? ratchet.build.dockerfile : undefined
    expect(existsSync(join(ROOT, context ?? '?', dockerfile ?? 'Dockerfile'))).toBe(true)
    expect(ratchet?.image).toBe('localhost/ratchet')
    // The command is the image's own CMD, and what it runs is the CLI the build compiles.
    expect(ratchet?.command).toEqual(dockerfileCmd())
    expect(ratchet?.command).toEqual(['node', 'apps/server/dist/cli.js', 'start'])
    const pkg = JSON.parse(readFileSync(join(ROOT, 'apps/server/package.json'), 'utf8')) as {
      bin: Record<string, string>
    }
    expect(pkg.bin.ratchet).toBe('dist/cli.js')
    expect(readFileSync(join(ROOT, 'tsdown.config.ts'), 'utf8')).toContain("cli: 'src/cli.ts'")
    expect(existsSync(join(ROOT, 'apps/server/src/cli.ts'))).toBe(true)
    // One host port per replica.
    const [range] = ratchet!.ports!
    const [, from, to, target] = /^'?(\d+)-(\d+):(\d+)'?$/.exec(String(range)) ?? []
    expect(Number(to) - Number(from) + 1).toBeGreaterThanOrEqual(ratchet!.deploy!.replicas!)
    expect(target).toBe(environment(ratchet!).PORT)
  })

  it('starts the servers once PostgreSQL is healthy, pointed at it, with a configuration they accept', () => {
    expect(ratchet?.depends_on).toEqual({ postgres: { condition: 'service_healthy' } })
    const env = environment(ratchet!)
    const target = databaseTarget(env.DATABASE_URL!)
    expect(target.kind).toBe('postgres')
    const url = new URL(env.DATABASE_URL!)
    const pgEnv = environment(postgres!)
    expect(url.hostname).toBe('postgres') // the service's name on the compose network
    expect(url.port).toBe('5432')
    expect(decodeURIComponent(url.username)).toBe(pgEnv.POSTGRES_USER)
    expect(decodeURIComponent(url.password)).toBe(pgEnv.POSTGRES_PASSWORD)
    expect(url.pathname).toBe(`/${pgEnv.POSTGRES_DB}`)
    const config = configFromEnv(env)
    expect(config).toMatchObject({ host: '0.0.0.0', port: 8787, databaseUrl: env.DATABASE_URL })
    // Every replica's pool together stays below PostgreSQL's default max_connections (100).
    expect(config.pgPoolSize * ratchet!.deploy!.replicas!).toBeLessThan(100)
    // The API key comes from the environment, required: compose refuses to start without it.
    expect(ratchet?.environment?.RATCHET_API_KEYS).toMatch(/^\$\{RATCHET_API_KEYS:\?/)
    expect(ratchet?.healthcheck?.test.join(' ')).toContain('/healthz')
    expect(seconds(ratchet?.stop_grace_period)).toBeGreaterThan(config.drainMs / 1000)
  })

  it('keeps the single-process SQLite server under the sqlite profile, its file on a named volume', () => {
    expect(sqlite?.profiles).toEqual(['sqlite'])
    expect(sqlite?.depends_on).toBeUndefined()
    expect(sqlite?.command).toEqual(dockerfileCmd())
    expect(sqlite?.deploy?.replicas ?? 1).toBe(1) // one process per SQLite file
    const env = environment(sqlite!)
    expect(databaseTarget(env.DATABASE_URL!)).toEqual({ kind: 'sqlite', filename: '/data/ratchet.db' })
    expect(mounts(sqlite!)).toContainEqual({ name: 'ratchet-data', path: '/data' })
    expect(compose.volumes).toHaveProperty('ratchet-data')
    expect(() => configFromEnv(env)).not.toThrow()
  })

  it('declares every named volume a service mounts', () => {
    for (const service of Object.values(compose.services))
      for (const { name } of mounts(service))
        if (!name.startsWith('.') && !name.startsWith('/')) expect(compose.volumes).toHaveProperty(name)
  })
})
