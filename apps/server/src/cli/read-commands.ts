/** The commands that only read: `get`, `ls` and `history`. */
import type { Command } from 'commander'
import type { ExecutionStatus, ListInput } from '@ratchet/client'
import {
  runClientCommand,
  withConnectionOptions,
  type ClientCommandDeps,
  type ConnectionOptions,
} from './context'
import { executionView } from './execution-view'
import { duration, printJson, relativeTime, status, table, type Colors } from './output'
import { integer, parseStatuses } from './parse'

/** The columns `ls` prints of an execution (the list's summaries carry no input or output). */
interface ListedExecution {
  id: string
  taskId: string
  status: ExecutionStatus
  attempt: number
  maxAttempts: number
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  error: { message: string; code?: string | undefined } | null
}

function truncate(text: string, max: number): string {
  const line = text.split('\n')[0] ?? ''
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

function listTable(items: ListedExecution[], now: Date, colors: Colors): string {
  const withErrors = items.some((item) => item.error)
  const head = ['ID', 'TASK', 'STATUS', 'ATTEMPT', 'CREATED', 'TOOK', ...(withErrors ? ['ERROR'] : [])]
  const rows = items.map((item) => [
    item.id,
    item.taskId,
    status(colors, item.status),
    `${item.attempt}/${item.maxAttempts}`,
    relativeTime(item.createdAt, now),
    item.startedAt && item.finishedAt ? duration(item.finishedAt.getTime() - item.startedAt.getTime()) : '-',
    ...(withErrors ? [item.error ? colors.dim(truncate(item.error.message, 60)) : ''] : []),
  ])
  return table(colors, head, rows)
}

interface ListFlags extends ConnectionOptions {
  status?: ExecutionStatus[]
  task?: string
  limit?: number
  cursor?: string
  parent?: string
  root?: string
}

interface HistoryFlags extends ConnectionOptions {
  cursor?: string
  limit?: number
  statusOnly?: boolean
}

export function addReadCommands(program: Command, deps: ClientCommandDeps): void {
  withConnectionOptions(
    program
      .command('get')
      .description('show an execution: status, attempts, times, input, output or error')
      .argument('<id>', 'the execution id'),
  ).action(async (id: string, flags: ConnectionOptions) => {
    await runClientCommand(deps, flags, async ({ client, output, json }) => {
      const execution = await client.executions.get(id)
      if (json) printJson(output, execution)
      else output.out(executionView(execution, output.now(), output.colors))
    })
  })

  withConnectionOptions(
    program
      .command('ls')
      .description('list executions, newest first')
      .option('-s, --status <status>', 'only these statuses (comma-separated or repeated)', parseStatuses)
      .option('-t, --task <task>', 'only this task')
      .option('-n, --limit <n>', 'at most this many, 1 to 500 (default: 50)', integer(1, 500))
      .option('--cursor <cursor>', 'the next page: the cursor the previous page printed')
      .option('--parent <id>', 'only the children of this execution')
      .option('--root <id>', 'this execution and everything below it'),
  )
    .addHelpText(
      'after',
      `
--json prints { items, nextCursor }; pass nextCursor to --cursor for the next page.

Examples:
  $ ratchet ls --status failed,timed_out --task send-email
  $ ratchet ls --root 01a24f85-bd0d-7d85-90e4-82b208af093d --json | jq '.items[].status'`,
    )
    .action(async (flags: ListFlags) => {
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const query: ListInput = {
          ...(flags.status?.length ? { status: flags.status } : {}),
          ...(flags.task !== undefined ? { taskId: flags.task } : {}),
          ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
          ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
          ...(flags.parent !== undefined ? { parentId: flags.parent } : {}),
          ...(flags.root !== undefined ? { rootId: flags.root } : {}),
        }
        const page = await client.executions.list(query)
        if (json) return printJson(output, page)
        const { colors } = output
        if (page.items.length === 0) output.out(`${colors.dim('no executions')}\n`)
        else output.out(listTable(page.items, output.now(), colors))
        if (page.nextCursor) output.out(colors.dim(`more: ratchet ls --cursor ${page.nextCursor}\n`))
      })
    })

  withConnectionOptions(
    program
      .command('history')
      .description("an execution's status changes and steps, oldest first")
      .argument('<id>', 'the execution id')
      .option('--cursor <cursor>', 'the next page: the cursor the previous page printed')
      .option('-n, --limit <n>', 'at most this many events, 1 to 1000 (default: 100)', integer(1, 1000))
      .option('--status-only', 'only status changes, not steps, waits, signals and children'),
  )
    .addHelpText(
      'after',
      '\n--json prints { items, nextCursor }; pass nextCursor to --cursor for the next page.',
    )
    .action(async (id: string, flags: HistoryFlags) => {
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const page = await client.executions.history(id, {
          ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
          ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
          ...(flags.statusOnly ? { statusOnly: true } : {}),
        })
        if (json) return printJson(output, page)
        const { colors } = output
        const now = output.now()
        const rows = page.items.map((event) => [
          String(event.seq),
          relativeTime(event.at, now),
          event.event,
          event.name ?? '',
          event.from === event.to
            ? status(colors, event.to)
            : `${status(colors, event.from)} → ${status(colors, event.to)}`,
          String(event.run),
        ])
        output.out(table(colors, ['SEQ', 'AT', 'EVENT', 'NAME', 'STATUS', 'RUN'], rows))
        if (page.nextCursor)
          output.out(colors.dim(`more: ratchet history ${id} --cursor ${page.nextCursor}\n`))
      })
    })
}
