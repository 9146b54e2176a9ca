/** `ratchet enqueue <task> <json>`, with `--wait` to follow the execution to its end. */
import type { Command } from 'commander'
import type { EnqueueOptions } from '@ratchet/client'
import {
  runClientCommand,
  withConnectionOptions,
  type ClientCommandDeps,
  type ConnectionOptions,
} from './context'
import { executionView } from './execution-view'
import { EXIT } from './exit-codes'
import { printJson, status, withSpinner } from './output'
import { integer, parseDuration, parseJson } from './parse'

interface EnqueueFlags extends ConnectionOptions {
  idempotencyKey?: string
  delay?: number
  priority?: number
  wait?: boolean
}

export function addEnqueueCommand(program: Command, deps: ClientCommandDeps): void {
  withConnectionOptions(
    program
      .command('enqueue')
      .description('enqueue an execution of a task with a JSON input')
      .argument('<task>', 'the task id, or its key in the server’s tasks object')
      .argument('<json>', 'the input, as JSON (checked against the task’s schema)', parseJson)
      .option('-k, --idempotency-key <key>', 'the same task and key never enqueue twice')
      .option('-d, --delay <duration>', 'do not start before this long from now (30s, 5m, 2h)', parseDuration)
      .option(
        '-p, --priority <n>',
        'higher runs first, -1000 to 1000 (default: the task’s)',
        integer(-1000, 1000),
      )
      .option('-w, --wait', 'wait for the execution to end and print it; exit 4 unless it completed'),
  )
    .addHelpText(
      'after',
      `
Without --wait it prints the new execution's id (--json: { execution, created }); with
--wait, the execution once it ended (--json: the execution), after a spinner on a terminal.
An idempotency key that matched an existing execution prints that one (created: false).

Examples:
  $ ratchet enqueue send-email '{"to":"ada@example.com"}'
  $ ratchet enqueue generate-report '{"accountId":"acme","month":"2026-10"}' --wait
  $ ratchet enqueue send-email '{"to":"ada@example.com"}' -k welcome-ada --delay 10m --json`,
    )
    .action(async (task: string, input: unknown, flags: EnqueueFlags) => {
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const options: EnqueueOptions = {
          ...(flags.idempotencyKey !== undefined ? { idempotencyKey: flags.idempotencyKey } : {}),
          ...(flags.delay !== undefined ? { delayMs: flags.delay } : {}),
          ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
        }
        const enqueued = await client.executions.enqueue(task, input, options)
        const { colors } = output
        if (!flags.wait) {
          if (json) printJson(output, { execution: enqueued.execution, created: enqueued.created })
          else {
            const what = enqueued.created ? 'enqueued' : 'already enqueued (idempotency key)'
            output.out(
              `${what} ${colors.bold(enqueued.executionId)} ${colors.dim(`(${enqueued.execution.taskId})`)}: ${status(colors, enqueued.execution.status)}\n`,
            )
          }
          return
        }
        const execution = await withSpinner(
          output,
          `${enqueued.executionId} (${enqueued.execution.taskId}) is running…`,
          client.executions.wait(enqueued.executionId),
        )
        if (json) printJson(output, execution)
        else output.out(executionView(execution, output.now(), colors))
        return execution.status === 'completed' ? EXIT.OK : EXIT.EXECUTION_FAILED
      })
    })
}
