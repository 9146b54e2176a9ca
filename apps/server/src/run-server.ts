import type { EnvConfig } from './config'
import { createServer } from './create-server'
import { loadTasksModule } from './load-tasks'
import { createLogger } from './logger'

/**
 * `ratchet start` and `npm start`: loads the tasks module, serves, and drains on
 * SIGTERM/SIGINT (a second signal exits at once). Rejects if the tasks module cannot be
 * loaded or the server cannot start; exits the process once stopped.
 */
export async function runServer(config: EnvConfig): Promise<void> {
  const logger = createLogger(config.logLevel)
  const { tasks, events } = await loadTasksModule(config.tasksModule)
  const server = await createServer({
    tasks,
    ...(events ? { events } : {}),
    databaseUrl: config.databaseUrl,
    pgPoolSize: config.pgPoolSize,
    port: config.port,
    ...(config.hostFromEnv ? { host: config.host } : {}),
    apiKeys: config.apiKeys,
    logger,
    concurrency: config.concurrency,
    leaseMs: config.leaseMs,
    pollIntervalMs: config.pollIntervalMs,
    drainMs: config.drainMs,
    shortSleepMs: config.shortSleepMs,
    retentionMs: config.retentionMs,
    maxPayloadBytes: config.maxPayloadBytes,
    sqliteSynchronous: config.sqliteSynchronous,
    attributeStrayErrors: config.attributeStrayErrors,
    metrics: config.metrics,
    tracing: config.tracing,
    secureCookies: config.secureCookies,
  })
  await server.start()

  let signalled = false
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting without draining')
      process.exit(1)
    }
    signalled = true
    logger.info({ signal, drainMs: config.drainMs }, 'shutting down: draining running attempts')
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}
