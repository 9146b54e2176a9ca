import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { OpenAPIGenerator } from '@orpc/openapi'
import { OpenAPIHandler } from '@orpc/openapi/node'
import { ORPCError } from '@orpc/server'
import { RPCHandler } from '@orpc/server/node'
import type { StandardHandlerOptions } from '@orpc/server/standard'
import { ZodToJsonSchemaConverter } from '@orpc/zod/zod4'
import {
  Engine,
  silentLogger,
  systemClock,
  type AttemptInfo,
  type Clock,
  type Logger,
  type RetentionMs,
  type StandardSchemaV1,
  type TaskMap,
} from '@ratchet/core'
import { context as otelContext } from '@opentelemetry/api'
import { authenticate, type ApiKey } from './auth'
import { RequestBodyLimit } from './body-limit'
import { isLoopback } from './config'
import { ServerMetrics, type MetricsMode } from './metrics'
import { combineObservers, notReadyReason } from './observability'
import { AttemptTracer, requestTraceContext } from './tracing'
import { DashboardFiles, defaultDashboardDir } from './dashboard'
import { apiErrors, InternalError, isUpstreamFailure } from './error-mapping'
import { createRouter, UNAUTHORIZED_MESSAGE, type RequestContext } from './router'
import { CSRF_HEADER, SessionAuth, type RequestAuth } from './session'
import { DatabaseProbe } from './database-probe'
import { openServerStorage } from './open-storage'
import { attemptScope, handleStrayErrors, type StrayErrorAttribution } from './stray-errors'
import { WatchHub } from './watch'

export interface ServerOptions {
  /** The tasks this server runs: the `tasks` export of your tasks module. */
  tasks: TaskMap
  /** The events `events.publish` accepts (a Standard Schema, usually a union on `type`). @default any object with a string `type` */
  events?: StandardSchemaV1
  /**
   * The database: `file:<path>` (or a bare path) of a SQLite file, for one server process; or
   * `postgres://user:password@host:5432/database` (`postgresql://` too), which several replicas
   * of the server share (see "Scale out" in the README).
   * @default 'file:./.data/ratchet.db'
   */
  databaseUrl?: string
  /** PostgreSQL only: connections in this server's pool. @default 10 */
  pgPoolSize?: number
  /** 0 picks a free port. @default 8787 */
  port?: number
  /**
   * Interface to listen on. Without API keys the server only ever listens on loopback.
   * @default '0.0.0.0' with API keys, '127.0.0.1' without
   */
  host?: string
  /** Bearer keys accepted on every route but `/healthz` and `/readyz`. @default [] (loopback only) */
  apiKeys?: readonly ApiKey[]
  /** A pino logger (or anything with the same methods). @default silent */
  logger?: Logger
  /** Attempts run at once by this process. @default 25 */
  concurrency?: number
  /**
   * How long a claimed run's lease lasts without a heartbeat (heartbeats extend it while the run
   * goes on): after a crash, how long until another process (or replica) recovers the run.
   * @default 30_000
   */
  leaseMs?: number
  /** Safety-net poll interval for lease recovery. @default 5_000 */
  pollIntervalMs?: number
  /**
   * How often open watches, change streams and waits check the database for changes another
   * process made (one read for all of them). Changes of this process wake them at once, and on
   * PostgreSQL so do other replicas' (LISTEN/NOTIFY): this catches what a lost notice missed.
   * @default 1_000
   */
  changePollMs?: number
  /** How long `stop()` lets running attempts finish before releasing them. @default 30_000 */
  drainMs?: number
  /** Durable sleeps this short pass in memory instead of parking (see ExecutorOptions). @default 1_000 */
  shortSleepMs?: number
  /**
   * How long finished execution trees (with their history, steps, signals and idempotency keys)
   * and published events are kept, in ms (1 s to 10 years), or `'forever'`; a task's own
   * `retentionMs` overrides it for the trees it is the root of. Purged in batches of 500 rows.
   * @default 7 days
   */
  retentionMs?: RetentionMs
  /** How often the retention purge runs. @default a quarter of the shortest retention, 1 s to 60 s */
  purgeIntervalMs?: number
  /** Largest input or output, in bytes of JSON. Request bodies may be 64 KiB larger. @default 1 MiB */
  maxPayloadBytes?: number
  /** @default 'normal' */
  sqliteSynchronous?: 'normal' | 'full'
  /**
   * Where the migrations of the database's dialect are (`migrations/sqlite` or
   * `migrations/postgres` of @ratchet/storage; set it when the server is bundled).
   * @default shipped with @ratchet/storage
   */
  migrationsFolder?: string
  /** @default the system clock */
  clock?: Clock
  /**
   * While started, catch errors that escape task code (a throw in a timer it set, an unhandled
   * rejection) instead of letting Node end the process: each is logged at error level with the
   * execution it came from and fails that attempt; one no execution owns is logged too. Turn it
   * off if your process installs its own `uncaughtException` / `unhandledRejection` handlers.
   * @default true
   */
  handleStrayErrors?: boolean
  /**
   * When stray errors start being traced to their execution: `after-first` (the first one is
   * logged without it, and attribution is on from then on) or `always`. Attribution costs
   * every promise of the process some time on Node 20 (about 15 % of the HTTP throughput of
   * no-op tasks), so it is off until a task shows it needs it. @default 'after-first'
   */
  attributeStrayErrors?: StrayErrorAttribution
  /**
   * Prometheus metrics at `/metrics`: `key` (a Bearer API key is needed, like the API),
   * `public` (no key), or `off` (404, nothing is measured). Without API keys `key` is the
   * same as `public` (the server listens on loopback only).
   * @default 'key'
   */
  metrics?: MetricsMode
  /**
   * OpenTelemetry spans per attempt and step, through `@opentelemetry/api`: they record only
   * when the process registered an OpenTelemetry SDK (see docs/observability.md). `false`
   * skips even the API's no-op calls. @default true
   */
  tracing?: boolean
  /**
   * Mark the dashboard's session cookie `Secure` (set it when browsers reach the server over
   * https, e.g. behind a TLS proxy). Not derived from X-Forwarded-Proto, which any client can send.
   * @default false
   */
  secureCookies?: boolean
  /**
   * The folder of the built dashboard (its index.html), served at `/`; `false` serves none.
   * @default the build shipped beside the server (dist/dashboard), when present
   */
  dashboardDir?: string | false
}

export interface RatchetServer {
  /** The Node request listener: mount it in your own HTTP server if you like. */
  handler: (req: IncomingMessage, res: ServerResponse) => void
  engine: Engine
  /** Open `executions.watch` streams. */
  readonly activeWatches: number
  /** Listens and starts the executor. Resolves with the bound address. */
  start(): Promise<{ url: string; host: string; port: number }>
  /**
   * Graceful stop: stops accepting connections and claiming, lets running attempts finish
   * (up to `drainMs`), closes open connections, then closes the database. Idempotent.
   */
  stop(): Promise<void>
}

const ENVELOPE_BYTES = 64 * 1024
/** Paths of the server's own routes: the dashboard's SPA fallback never answers them. */
const RESERVED_PATHS = /^\/(rpc|api|auth|healthz|readyz|metrics)(\/|$)/

type HandlerInterceptor = NonNullable<StandardHandlerOptions<RequestContext>['interceptors']>[number]

/**
 * Builds a server: opens (and migrates) the database and wires the engine and HTTP
 * handlers. Listens on nothing until `start()`.
 */
export async function createServer(options: ServerOptions): Promise<RatchetServer> {
  const logger = options.logger ?? silentLogger
  const apiKeys = options.apiKeys ?? []
  const maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024
  const opened = await openServerStorage({
    databaseUrl: options.databaseUrl ?? 'file:./.data/ratchet.db',
    sqliteSynchronous: options.sqliteSynchronous,
    pgPoolSize: options.pgPoolSize,
    migrationsFolder: options.migrationsFolder,
  })
  const { storage } = opened
  const probe = opened.ping ? new DatabaseProbe({ ping: opened.ping }) : undefined
  const strayErrors = options.handleStrayErrors ?? true
  const metricsMode = options.metrics ?? 'key'
  let engine: Engine
  const metrics =
    metricsMode === 'off'
      ? undefined
      : new ServerMetrics({ engine: () => engine, clock: options.clock ?? systemClock, logger })
  const tracer = options.tracing === false ? undefined : new AttemptTracer()
  const observer = combineObservers([metrics?.observer, tracer?.observer].filter((o) => o !== undefined))
  const strayScope = strayErrors ? attemptScope(() => ({ executor: engine.executor, logger })) : undefined
  const withinAttempt = tracer
    ? <T>(attempt: AttemptInfo, fn: () => T): T => {
        const traced = tracer.contextOf(attempt)
        const run = traced ? () => otelContext.with(traced, fn) : fn
        return strayScope ? strayScope(attempt, run) : run()
      }
    : strayScope
  try {
    engine = new Engine({
      storage,
      tasks: options.tasks,
      ...(options.events ? { events: options.events } : {}),
      logger,
      concurrency: options.concurrency ?? 25,
      maxPayloadBytes,
      ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
      ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}),
      ...(options.shortSleepMs !== undefined ? { shortSleepMs: options.shortSleepMs } : {}),
      ...(options.retentionMs !== undefined ? { retentionMs: options.retentionMs } : {}),
      ...(options.purgeIntervalMs !== undefined ? { purgeIntervalMs: options.purgeIntervalMs } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(withinAttempt ? { withinAttempt } : {}),
      ...(observer ? { observer } : {}),
    })
    metrics?.followChanges(engine)
  } catch (error) {
    await opened.close()
    throw error
  }

  const watches = new WatchHub({
    engine,
    ...(options.changePollMs !== undefined ? { pollMs: options.changePollMs } : {}),
  })
  const router = createRouter({ engine, apiKeys, watches, logger })
  const sessions = new SessionAuth({
    apiKeys,
    logger,
    ...(options.secureCookies ? { secureCookies: true } : {}),
  })
  const dashboardDir = options.dashboardDir ?? defaultDashboardDir()
  const dashboard = dashboardDir === false ? undefined : new DashboardFiles(dashboardDir)
  /** The API error of a refused request (401, or 403 CSRF_FAILED for a session without its token). */
  const refused = (
    auth: Extract<RequestAuth, { ok: false }>,
    path: string,
    remoteAddress: string | undefined,
  ) => {
    if (auth.reason === 'CSRF_FAILED')
      return new ORPCError('CSRF_FAILED', {
        status: 403,
        message: `a request authenticated by the session cookie needs the ${CSRF_HEADER} header (from GET /auth/session)`,
      })
    logger.warn({ path, remoteAddress }, 'request rejected: missing or invalid API key')
    return apiErrors.UNAUTHORIZED({ message: UNAUTHORIZED_MESSAGE })
  }
  /**
   * First, before the body is read: a request without a valid key (Bearer, or the dashboard's
   * session cookie plus its CSRF token) is refused (decoding or size-checking an anonymous body
   * would tell its sender something, and cost us the work). The key's name goes into this
   * request's own context, so the router's middleware does not check it a second time.
   */
  const keyFirst: HandlerInterceptor = (interceptor) => {
    if (apiKeys.length > 0) {
      const auth = sessions.authenticate(interceptor.context.headers, interceptor.request.method)
      if (!auth.ok) throw refused(auth, interceptor.request.url.pathname, interceptor.context.remoteAddress)
      interceptor.context.apiKeyName = auth.apiKeyName
    }
    return interceptor.next()
  }
  /**
   * Around every request: a request that could not be decoded (malformed JSON, a form that does
   * not parse) is the client's mistake, an INVALID_INPUT with the reason, logged at debug; a 5xx
   * is logged at error with its stack, once.
   */
  const requestErrors: HandlerInterceptor = async (interceptor) => {
    try {
      return await interceptor.next()
    } catch (error) {
      // The procedures turn every error into an ORPCError (the router's middleware), so anything
      // else failed before them, while decoding the request.
      if (!(error instanceof ORPCError)) throw undecodable(error)
      // (InternalError and upstream failures were logged by the router's middleware.)
      if (error.status >= 500 && !(error instanceof InternalError) && !isUpstreamFailure(error))
        logger.error({ err: error.cause ?? error, code: error.code }, 'request failed')
      throw error
    }
  }
  const undecodable = (error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error)
    logger.debug({ reason }, 'request could not be decoded')
    const problem = error instanceof SyntaxError ? `malformed JSON: ${reason}` : reason
    return apiErrors.INVALID_INPUT({
      message: `the request could not be decoded (${problem}); send JSON with Content-Type: application/json`,
      data: { issues: [{ path: [], message: problem }] },
      cause: error,
    })
  }
  const plugins = [new RequestBodyLimit<RequestContext>(maxPayloadBytes + ENVELOPE_BYTES)]
  const interceptors = [keyFirst, requestErrors]
  const rpc = new RPCHandler(router, { plugins, interceptors })
  const rest = new OpenAPIHandler(router, { plugins, interceptors })
  let spec: Promise<unknown> | undefined
  const openApiSpec = () =>
    (spec ??= new OpenAPIGenerator({ schemaConverters: [new ZodToJsonSchemaConverter()] }).generate(router, {
      info: { title: 'Ratchet API', version: '0.1.0', description: 'Enqueue and follow durable executions.' },
      servers: [{ url: '/api' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    }))

  async function handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!
    const routing = context.http!
    if (path === '/healthz') {
      routing.route = 'healthz'
      return sendJson(res, 200, { status: 'ok' })
    }
    if (path === '/readyz') {
      routing.route = 'readyz'
      const reason = notReadyReason(engine, stopping !== undefined, await probe?.check())
      if (reason !== undefined) logger.debug({ reason }, 'readiness probe: not ready')
      return sendJson(
        res,
        reason === undefined ? 200 : 503,
        reason === undefined ? { status: 'ready' } : { status: 'not ready', reason },
      )
    }
    if (path === '/metrics' && metrics) {
      routing.route = 'metrics'
      if (
        metricsMode === 'key' &&
        apiKeys.length > 0 &&
        authenticate(apiKeys, req.headers.authorization) === undefined
      ) {
        logger.warn(
          { path, remoteAddress: context.remoteAddress },
          'request rejected: missing or invalid API key',
        )
        return sendJson(res, 401, apiErrors.UNAUTHORIZED({ message: UNAUTHORIZED_MESSAGE }).toJSON())
      }
      const text = await metrics.scrape()
      res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) })
      return void res.end(text)
    }
    if (path === '/api/spec.json') {
      routing.route = 'spec'
      const auth = apiKeys.length > 0 ? sessions.authenticate(req.headers, req.method ?? 'GET') : undefined
      if (auth && !auth.ok) {
        const error = refused(auth, path, context.remoteAddress)
        return sendJson(res, error.status, error.toJSON())
      }
      return sendJson(res, 200, await openApiSpec())
    }
    if (path === '/rpc' || path.startsWith('/rpc/')) {
      routing.route = 'rpc_unmatched' // until a procedure matches
      if ((await rpc.handle(req, res, { prefix: '/rpc', context })).matched) return
    } else if (path === '/api' || path.startsWith('/api/')) {
      routing.route = 'api_unmatched'
      if ((await rest.handle(req, res, { prefix: '/api', context })).matched) return
    } else if (path === '/auth' || path.startsWith('/auth/')) {
      routing.route = 'auth'
      return sessions.handle(req, res, path)
    } else if (dashboard && !RESERVED_PATHS.test(path)) {
      routing.route = 'dashboard'
      return dashboard.serve(req, res, path)
    }
    sendJson(res, 404, { code: 'NOT_FOUND', message: `no route for ${req.method ?? 'GET'} ${path}` })
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const routing: { route?: string } = {}
    const context: RequestContext = {
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress,
      http: routing,
    }
    if (metrics) {
      const started = process.hrtime.bigint()
      res.once('close', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        metrics.httpRequest(routing.route ?? 'unmatched', req.method ?? 'GET', res.statusCode, seconds)
      })
    }
    // An enqueue in a trace (`traceparent`) starts the execution's attempts in that trace.
    const traced = tracer && requestTraceContext(req.headers)
    const handling = traced
      ? otelContext.with(traced, () => handle(req, res, context))
      : handle(req, res, context)
    handling.catch((error: unknown) => {
      logger.error({ err: error }, 'unhandled request error')
      if (!res.headersSent)
        sendJson(res, 500, { code: 'INTERNAL_SERVER_ERROR', message: 'internal server error' })
      else res.destroy()
    })
  }

  let http: Server | undefined
  let stopping: Promise<void> | undefined
  let releaseStrayErrors: (() => void) | undefined

  return {
    handler,
    engine,
    get activeWatches() {
      return watches.active
    },
    async start() {
      if (http) throw new Error('server already started')
      let host = options.host ?? (apiKeys.length > 0 ? '0.0.0.0' : '127.0.0.1')
      if (apiKeys.length === 0 && !isLoopback(host)) {
        logger.warn(
          { requestedHost: host },
          'no API keys configured (RATCHET_API_KEYS): listening on 127.0.0.1 only',
        )
        host = '127.0.0.1'
      } else if (apiKeys.length === 0) {
        logger.warn(
          { host },
          'no API keys configured (RATCHET_API_KEYS): authentication is off, listening on loopback only',
        )
      }
      const server = (http = createHttpServer(handler))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(options.port ?? 8787, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      if (strayErrors)
        releaseStrayErrors = handleStrayErrors(logger, engine.executor, options.attributeStrayErrors)
      engine.start()
      const { port } = server.address() as AddressInfo
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
      logger.info(
        {
          url,
          tasks: engine.registry.ids(),
          apiKeys: apiKeys.map((k) => k.name),
          database: opened.database,
          concurrency: options.concurrency ?? 25,
        },
        'ratchet server listening',
      )
      if (engine.registry.ids().length === 0)
        logger.warn({}, 'no tasks registered: the tasks module exports no task, so nothing will run')
      return { url, host, port }
    },
    stop() {
      stopping ??= (async () => {
        // From here /readyz answers 503 (draining), before connections close.
        const closed = http ? new Promise<void>((resolve) => http!.close(() => resolve())) : Promise.resolve()
        http?.closeIdleConnections()
        // Watch streams end now; their clients reconnect (to this server after a restart, or
        // another replica) and resume from the last event they saw.
        watches.closeAll()
        await engine.stop({ drainMs: options.drainMs ?? 30_000 })
        // Long-polling waits would hold the server open; the drain is over, so end them.
        http?.closeAllConnections()
        await closed
        await opened.close()
        releaseStrayErrors?.()
        logger.info({}, 'ratchet server stopped')
      })()
      return stopping
    },
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
