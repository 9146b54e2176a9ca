/** `ratchet tail`: every status change, live, from the `executions.changes` stream, until Ctrl-C. */
import type { Command } from 'commander'
import { ORPCError, type ChangeEvent } from '@ratchet/client'
import {
  runClientCommand,
  withConnectionOptions,
  type ClientCommandDeps,
  type ConnectionOptions,
} from './context'
import { EXIT, networkCause } from './exit-codes'
import { printJsonLine, status, type Colors } from './output'

interface TailFlags extends ConnectionOptions {
  task?: string
  root?: string
}

/** How long the client reconnects by itself before `tail` says the connection is lost. */
const QUIET_RECONNECT_MS = 3_000
/** Between two rounds of reconnecting once the connection is lost. */
const LOST_PAUSE_MS = 1_000

/**
 * `07:44:01.123  01a24f85-…  send-email        queued → running     run 1` (UTC time). Task and
 * change are padded to fixed widths, so the lines of a stream line up without knowing the
 * ones to come.
 */
function changeLine(event: ChangeEvent, colors: Colors): string {
  const time = event.at.toISOString().slice(11, 23)
  const plain = event.from ? `${event.from} → ${event.to}` : event.to
  const change = event.from
    ? `${status(colors, event.from)} → ${status(colors, event.to)}`
    : status(colors, event.to)
  const task = event.taskId.padEnd(20)
  return `${colors.dim(time)}  ${event.executionId}  ${task}  ${change}${' '.repeat(Math.max(0, 19 - plain.length))}  ${colors.dim(`run ${event.run}`)}\n`
}

/** A failure a reconnect can cure: the network, a 5xx, a stream that ended; not a 4xx. */
function isTransient(error: unknown): boolean {
  return !(error instanceof ORPCError) || (error as ORPCError<string, unknown>).status >= 500
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}

export function addTailCommand(program: Command, deps: ClientCommandDeps): void {
  withConnectionOptions(
    program
      .command('tail')
      .description('print every status change as it happens, until Ctrl-C')
      .option('-t, --task <task>', 'only executions of this task')
      .option('--root <id>', 'only this execution and everything below it'),
  )
    .addHelpText(
      'after',
      `
Each line: the time (UTC), the execution, its task, the change and the run it happened in.
--json prints one JSON object per line: { cursor, seq, executionId, taskId, rootId, parentId,
from, to, run, at }. When the connection drops (a restart, a deploy), tail says so on stderr and
reconnects until it is back, resuming after the last change it printed.

Examples:
  $ ratchet tail --task send-email
  $ ratchet tail --json | jq -c 'select(.to == "failed")'`,
    )
    .action(async (flags: TailFlags) => {
      await runClientCommand(deps, flags, async ({ client, output, json, url }) => {
        // Fails fast, with the usual exit code, on a server that is not there or a wrong key.
        await client.executions.list({ limit: 1 })
        const controller = new AbortController()
        const stop = () => controller.abort()
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
        const { signal } = controller
        let lastEventId: string | undefined
        let lost = false
        try {
          if (!json) output.err(output.errColors.dim(`following changes at ${url} (Ctrl-C to stop)\n`))
          while (!signal.aborted) {
            try {
              for await (const event of client.executions.changes({
                ...(flags.task !== undefined ? { taskId: flags.task } : {}),
                ...(flags.root !== undefined ? { rootId: flags.root } : {}),
                ...(lastEventId !== undefined ? { lastEventId } : {}),
                signal,
                reconnectForMs: QUIET_RECONNECT_MS,
              })) {
                if (lost) output.err(output.errColors.dim('reconnected\n'))
                lost = false
                lastEventId = event.cursor
                if (json) printJsonLine(output, event)
                else output.out(changeLine(event, output.colors))
              }
            } catch (error) {
              if (signal.aborted) break
              if (!isTransient(error)) throw error
              if (!lost) {
                const why = networkCause(error) ?? (error instanceof Error ? error.message : String(error))
                output.err(`ratchet: lost the connection to ${url} (${why}); reconnecting until Ctrl-C\n`)
              }
              lost = true
              await pause(LOST_PAUSE_MS, signal)
            }
          }
        } finally {
          process.off('SIGINT', stop)
          process.off('SIGTERM', stop)
        }
        return EXIT.OK
      })
    })
}
