/**
 * The client commands of `ratchet`: they talk to a running server through `@ratchet/client`
 * (`--url`/`--api-key`, or RATCHET_URL/RATCHET_API_KEY), unlike `start` and `migrate`.
 */
import type { Command } from 'commander'
import { addActionCommands } from './action-commands'
import type { ClientCommandDeps } from './context'
import { addEnqueueCommand } from './enqueue-command'
import { addReadCommands } from './read-commands'
import { addTailCommand } from './tail-command'
import { addTaskCommands } from './task-commands'

export function addClientCommands(program: Command, deps: ClientCommandDeps): void {
  addEnqueueCommand(program, deps)
  addReadCommands(program, deps)
  addActionCommands(program, deps)
  addTailCommand(program, deps)
  addTaskCommands(program, deps)
}

/** The end of `ratchet --help`: the environment and the exit codes (see exit-codes.ts). */
export const CLIENT_HELP = `
The client commands (enqueue, get, ls, history, cancel, retry, signal, wakeup, tail, tasks) talk to
a running server: --url and --api-key, or RATCHET_URL and RATCHET_API_KEY (a flag wins over
its variable; default URL http://127.0.0.1:8787). --json prints JSON for scripts. Colours
are off with NO_COLOR or when the output is not a terminal.

Exit codes:
  0  done
  1  the server answered an error (bad input, not found, conflict, wrong API key),
     or start/migrate/copy-sqlite failed
  2  usage error (unknown command or option, a malformed argument such as bad JSON)
  3  the server is unreachable or answered 5xx (copy-sqlite: PostgreSQL is unreachable)
  4  enqueue --wait: the execution failed, timed out or was cancelled

Examples:
  $ ratchet start --tasks ./src/tasks.ts
  $ ratchet enqueue send-email '{"to":"ada@example.com"}' --wait
  $ ratchet ls --status failed
  $ ratchet tail --json`
