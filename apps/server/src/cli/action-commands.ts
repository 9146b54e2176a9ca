/** The commands that act on executions: `cancel`, `retry`, `signal` and `wakeup`. */
import type { Command } from 'commander'
import {
  runClientCommand,
  withConnectionOptions,
  type ClientCommandDeps,
  type ConnectionOptions,
} from './context'
import { executionLine } from './execution-view'
import { printJson } from './output'
import { parseJson } from './parse'

interface WakeupFlags extends ConnectionOptions {
  error?: string
  code?: string
}

export function addActionCommands(program: Command, deps: ClientCommandDeps): void {
  withConnectionOptions(
    program
      .command('cancel')
      .description('cancel a queued, running or waiting execution and everything below it')
      .argument('<id>', 'the execution id'),
  ).action(async (id: string, flags: ConnectionOptions) => {
    await runClientCommand(deps, flags, async ({ client, output, json }) => {
      const execution = await client.executions.cancel(id)
      if (json) printJson(output, execution)
      else output.out(executionLine('cancelled', execution, output.colors))
    })
  })

  withConnectionOptions(
    program
      .command('retry')
      .description(
        'run a failed, timed-out or cancelled execution again (steps it recorded as done are kept)',
      )
      .argument('<id>', 'the execution id'),
  ).action(async (id: string, flags: ConnectionOptions) => {
    await runClientCommand(deps, flags, async ({ client, output, json }) => {
      const execution = await client.executions.retry(id)
      if (json) printJson(output, execution)
      else output.out(executionLine('retrying', execution, output.colors))
    })
  })

  withConnectionOptions(
    program
      .command('signal')
      .description('send a signal to an execution: a ctx.waitForSignal(name) in it takes the payload')
      .argument('<id>', 'the execution id')
      .argument('<name>', 'the signal name')
      .argument('[json]', 'the payload, as JSON (default: null)', parseJson),
  )
    .addHelpText(
      'after',
      `\nExample:\n  $ ratchet signal 01a24f85-bd0d-7d85-90e4-82b208af093d approval '{"approved":true}'`,
    )
    .action(async (id: string, name: string, payload: unknown, flags: ConnectionOptions) => {
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const execution = await client.executions.signal(id, name, payload ?? null)
        if (json) printJson(output, execution)
        else output.out(executionLine(`signal "${name}" sent to`, execution, output.colors))
      })
    })

  withConnectionOptions(
    program
      .command('wakeup')
      .description(
        'complete the wait registered under a wakeup key (ctx.waitForWakeup) with an output or an error',
      )
      .argument('<key>', 'the wakeup key')
      .argument('[json]', 'the output the wait resolves with, as JSON', parseJson)
      .option('-e, --error <message>', 'fail the wait instead: the task sees an error with this message')
      .option('--code <code>', 'with --error: the error’s code'),
  )
    .addHelpText(
      'after',
      `
Give the output (JSON) or --error, not both.

Examples:
  $ ratchet wakeup invoice-42-paid '{"paidAt":"2026-12-07"}'
  $ ratchet wakeup invoice-42-paid --error 'card declined' --code CARD_DECLINED`,
    )
    .action(async (key: string, value: unknown, flags: WakeupFlags, command: Command) => {
      const given = value !== undefined
      if (given === (flags.error !== undefined))
        command.error(`error: give the output (JSON) or --error <message>${given ? ', not both' : ''}`, {
          exitCode: 2,
          code: 'ratchet.wakeupResult',
        })
      if (flags.code !== undefined && flags.error === undefined)
        command.error('error: --code goes with --error', { exitCode: 2, code: 'ratchet.wakeupResult' })
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const result = await client.executions.wakeup(
          key,
          flags.error !== undefined
            ? { error: { message: flags.error, ...(flags.code !== undefined ? { code: flags.code } : {}) } }
            : { output: value },
        )
        if (json) printJson(output, result)
        else
          output.out(
            `woke ${output.colors.bold(key)}: execution ${output.colors.bold(result.executionId)} goes on\n`,
          )
      })
    })
}
