#!/usr/bin/env node
/**
 * The `ratchet` bin of @ratchet/server: `npx ratchet start --tasks ./src/tasks.ts`, and the
 * client commands (`npx ratchet ls`). Exit codes: see cli/exit-codes.ts.
 */
import { CommanderError } from 'commander'
import { CommandExit } from './cli/context'
import { EXIT } from './cli/exit-codes'
import { createCli } from './cli-program'

try {
  await createCli().parseAsync(process.argv)
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander printed it (or the help, or the version): 0 for those, 2 for a usage error.
    process.exit(error.exitCode === 0 ? EXIT.OK : EXIT.USAGE)
  }
  if (error instanceof CommandExit) {
    // Everything written is out (a pipe may be asynchronous) before the process ends.
    await new Promise((resolve) => process.stdout.write('', resolve))
    await new Promise((resolve) => process.stderr.write('', resolve))
    process.exit(error.exitCode)
  }
  process.stderr.write(`ratchet: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(EXIT.SERVER_ERROR)
}
