#!/usr/bin/env node
/** The `ratchet` bin of @ratchet/server: `npx ratchet start --tasks ./src/tasks.ts`. */
import { createCli } from './cli-program'

try {
  await createCli().parseAsync(process.argv)
} catch (error) {
  process.stderr.write(`ratchet: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
}
