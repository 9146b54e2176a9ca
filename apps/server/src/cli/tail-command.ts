/** `ratchet tail`: every status change, live, until Ctrl-C. */
import type { Command } from 'commander'
import type { ClientCommandDeps } from './context'

export function addTailCommand(_program: Command, _deps: ClientCommandDeps): void {}
