/**
 * `ratchet tasks`: the tasks a server runs; `tasks pause|resume` for their queues; `tasks
 * refresh` for the functions apps host.
 */
import type { Command } from 'commander'
import type { RatchetClient, TaskInfo, TaskQueue, TaskRefresh } from '@ratchet/client'
import {
  runClientCommand,
  withConnectionOptions,
  type ClientCommandDeps,
  type ConnectionOptions,
} from './context'
import { duration, printJson, relativeTime, table, type Colors } from './output'

function tasksTable(tasks: TaskInfo[], pausedAt: Map<string, Date>, now: Date, colors: Colors): string {
  const rows = tasks.map((t) => [
    t.id,
    pausedAt.has(t.id) ? colors.yellow(`paused ${relativeTime(pausedAt.get(t.id), now)}`) : 'running',
    t.key !== null && t.key !== t.id ? t.key : '',
    duration(t.timeoutMs),
    String(t.retry.maxAttempts),
    t.priority === 0 ? '' : String(t.priority),
    t.on.join(', '),
    colors.dim(t.description ?? ''),
  ])
  return table(colors, ['ID', 'QUEUE', 'KEY', 'TIMEOUT', 'ATTEMPTS', 'PRIORITY', 'ON', 'DESCRIPTION'], rows)
}

function refreshLines({ sources }: TaskRefresh, colors: Colors): string {
  if (sources.length === 0)
    return `${colors.dim('no app functions: nothing to refresh (the tasks module is loaded at start only)')}\n`
  const list = (ids: string[]) => (ids.length === 0 ? colors.dim('none') : ids.join(', '))
  return sources
    .map(
      (s) =>
        `${s.name}\n  added:   ${list(s.added)}\n  updated: ${list(s.updated)}\n` +
        (s.missing.length > 0
          ? `  missing: ${s.missing.join(', ')} ${colors.dim('(no longer offered; registered until a restart)')}\n`
          : ''),
    )
    .join('')
}

export function addTaskCommands(program: Command, deps: ClientCommandDeps): void {
  const tasks = program.command('tasks').description('the tasks the server runs')

  withConnectionOptions(
    tasks.command('ls', { isDefault: true }).description('list the registered tasks and their options'),
  )
    .addHelpText('after', '\n--json prints the tasks as the API lists them, each with its pausedAt.')
    .action(async (flags: ConnectionOptions) => {
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const [list, stats] = await Promise.all([client.listTasks(), client.taskStats()])
        const pausedAt = new Map(stats.flatMap((s) => (s.pausedAt ? [[s.taskId, s.pausedAt] as const] : [])))
        if (json)
          return printJson(
            output,
            list.map((t) => ({ ...t, pausedAt: pausedAt.get(t.id) ?? null })),
          )
        output.out(
          list.length === 0
            ? `${output.colors.dim('no tasks')}\n`
            : tasksTable(list, pausedAt, output.now(), output.colors),
        )
      })
    })

  /** `tasks pause|resume <task>`: the call, then the queue as JSON or one line. */
  const queueAction =
    (
      verb: string,
      call: (client: RatchetClient<Record<string, never>>, task: string) => Promise<TaskQueue>,
    ) =>
    (task: string, flags: ConnectionOptions) =>
      runClientCommand(deps, flags, async ({ client, output, json }) => {
        const queue = await call(client, task)
        if (json) printJson(output, queue)
        else output.out(`${verb} ${queue.taskId}\n`)
      })
  withConnectionOptions(
    tasks
      .command('pause')
      .description(
        'pause a task’s queue: enqueues are accepted and running attempts finish, nothing more starts',
      )
      .argument('<task>', 'the task id, or its key in the server’s tasks object'),
  )
    .addHelpText(
      'after',
      `
The pause holds on every replica and across restarts, until \`ratchet tasks resume <task>\`.

Example:
  $ ratchet tasks pause sync-crm`,
    )
    .action(queueAction('paused', (client, task) => client.pauseTask(task)))

  withConnectionOptions(
    tasks
      .command('resume')
      .description('resume a paused task’s queue: its due executions start at once')
      .argument('<task>', 'the task id, or its key in the server’s tasks object'),
  ).action(queueAction('resumed', (client, task) => client.resumeTask(task)))

  withConnectionOptions(
    tasks
      .command('refresh')
      .description(
        'fetch the manifests of the apps whose functions the server runs again, and register new and changed functions',
      ),
  )
    .addHelpText(
      'after',
      `
Run it after deploying an app with new or changed durable functions (the server also refreshes
every 60 s and when an enqueue names an unknown id). With several replicas behind a load
balancer, only the replica that answers refreshes.`,
    )
    .action(async (flags: ConnectionOptions) => {
      await runClientCommand(deps, flags, async ({ client, output, json }) => {
        const result = await client.refreshTasks()
        if (json) printJson(output, result)
        else output.out(refreshLines(result, output.colors))
      })
    })
}
