/**
 * The server configured by the environment alone (`npm start`, `npm run dev`, the container
 * image): the same as `ratchet start` without flags.
 */
import { configFromEnv } from './config'
import { runServer } from './run-server'

try {
  await runServer(configFromEnv())
} catch (error) {
  process.stderr.write(`ratchet: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
}
