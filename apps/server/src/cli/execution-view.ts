/** The human forms of an execution: the full view of `get`, and the one line of actions. */
import type { Execution, StoredError } from '@ratchet/client'
import { duration, fields, indentedJson, relativeTime, status, type Colors } from './output'

/** `2026-12-07 08:01:02 (3m ago)`: the UTC time and how long ago. */
function when(date: Date | null, now: Date, colors: Colors): string | undefined {
  if (!date) return undefined
  const utc = date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')
  return `${utc} ${colors.dim(`(${relativeTime(date, now)})`)}`
}

/** An error with its code, stack (dimmed) and causes, indented. */
export function errorView(error: StoredError, colors: Colors, indent = '  '): string {
  const code = error.code ? ` ${colors.dim(`[${error.code}]`)}` : ''
  let text = `${indent}${colors.red(`${error.name}: ${error.message}`)}${code}\n`
  if (error.data && Object.keys(error.data).length)
    text += `${colors.dim(indentedJson(error.data, `${indent}  `))}\n`
  if (error.stack) {
    const frames = error.stack.split('\n').filter((line) => /^\s+at /.test(line))
    text += frames.map((line) => `${indent}  ${colors.dim(line.trim())}\n`).join('')
  }
  if (error.cause)
    text += `${indent}${colors.dim('caused by:')}\n${errorView(error.cause, colors, `${indent}  `)}`
  return text
}

/** Everything about one execution, for `ratchet get` and `enqueue --wait`. */
export function executionView(execution: Execution, now: Date, colors: Colors): string {
  const took =
    execution.startedAt && execution.finishedAt
      ? duration(execution.finishedAt.getTime() - execution.startedAt.getTime())
      : undefined
  let text = fields(colors, [
    ['id', colors.bold(execution.id)],
    ['task', execution.taskId],
    ['status', status(colors, execution.status)],
    [
      'attempt',
      `${execution.attempt} of ${execution.maxAttempts} (${execution.failures} failed, ${execution.runs} ${execution.runs === 1 ? 'run' : 'runs'})`,
    ],
    ['priority', execution.priority !== 0 ? String(execution.priority) : undefined],
    ['key', execution.idempotencyKey ?? undefined],
    ['created', when(execution.createdAt, now, colors)],
    [
      'runs at',
      execution.status === 'queued' && execution.runAt > now ? when(execution.runAt, now, colors) : undefined,
    ],
    ['started', when(execution.startedAt, now, colors)],
    ['finished', when(execution.finishedAt, now, colors)],
    ['took', took],
    ['deadline', when(execution.deadlineAt, now, colors)],
    ['parent', execution.parentId ?? undefined],
    ['root', execution.rootId !== execution.id ? execution.rootId : undefined],
  ])
  text += `${colors.dim('input')}\n${indentedJson(execution.input)}\n`
  if (execution.status === 'completed') text += `${colors.dim('output')}\n${indentedJson(execution.output)}\n`
  if (execution.error) {
    const label = execution.status === 'failed' || execution.status === 'timed_out' ? 'error' : 'last error'
    text += `${colors.dim(label)}\n${errorView(execution.error, colors)}`
  }
  return text
}

/** `cancelled 01a24f85-… (send-email): cancelled`: what an action did, in one line. */
export function executionLine(verb: string, execution: Execution, colors: Colors): string {
  return `${verb} ${colors.bold(execution.id)} ${colors.dim(`(${execution.taskId})`)}: ${status(colors, execution.status)}\n`
}
