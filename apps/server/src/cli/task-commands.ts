/** `ratchet tasks`: the tasks a server runs, and `tasks refresh` for the functions apps host. */
import type { Command } from 'commander'
import type { TaskInfo, TaskRefresh } from '@ratchet/client'
import {
  runClientCommand,
  withConnectionOptions,
  type ClientCommandDeps,
  type ConnectionOptions,
} from './context'
import { duration, printJson, table, type Colors } from './output'

function tasksTable(tasks: TaskInfo[], colors: Colors): string {
  const rows = tasks.map((t) => [
    t.id,
    t.key !== null && t.key !== t.id ? t.key : '',
    duration(t.timeoutMs),
    String(t.retry.maxAttempts),
    t.priority === 0 ? '' : String(t.priority),
    t.on.join(', '),
    colors.dim(t.description ?? ''),
  ])
  return table(colors, ['ID', 'KEY', 'TIMEOUT', 'ATTEMPTS', 'PRIORITY', 'ON', 'DESCRIPTION'], rows)
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
  ).action(async (flags: ConnectionOptions) => {
    await runClientCommand(deps, flags, async ({ client, output, json }) => {
      const list = await client.listTasks()
      if (json) return printJson(output, list)
      output.out(list.length === 0 ? `${output.colors.dim('no tasks')}\n` : tasksTable(list, output.colors))
    })
  })

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
