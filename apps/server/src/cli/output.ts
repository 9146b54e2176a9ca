/**
 * How the client commands print: colours (picocolors), aligned borderless tables (cli-table3),
 * relative times (Intl.RelativeTimeFormat), a spinner while waiting (nanospinner), and the
 * `--json` form. Human output goes to stdout, messages about the command (errors, the spinner,
 * "reconnecting") to stderr, so `ratchet ls | grep` and `ratchet get --json | jq` see data only.
 */
import Table from 'cli-table3'
import { createSpinner } from 'nanospinner'
import picocolors from 'picocolors'
import type { ExecutionStatus } from '@ratchet/client'

export type Colors = ReturnType<typeof picocolors.createColors>

/** Where a command writes, and whether colours and a spinner belong there. */
export interface Output {
  /** Writes to stdout. */
  out(text: string): void
  /** Writes to stderr. */
  err(text: string): void
  /** Colours for stdout (all no-ops when it takes none). */
  colors: Colors
  /** Colours for stderr. */
  errColors: Colors
  /** Whether stderr is a terminal (with a width, not TERM=dumb, not CI): a spinner is drawn only then. */
  interactive: boolean
  /** The clock relative times are measured from. */
  now(): Date
}

interface Stream {
  isTTY?: boolean
  write(text: string): unknown
}

/**
 * Colours on a stream: never with `NO_COLOR` set (any value, https://no-color.org), nor on a
 * stream that is not a terminal, nor on `TERM=dumb`; `FORCE_COLOR` (not 0) turns them on anyway.
 */
export function colorsFor(stream: Stream, env: NodeJS.ProcessEnv): Colors {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return picocolors.createColors(false)
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return picocolors.createColors(true)
  return picocolors.createColors(stream.isTTY === true && env.TERM !== 'dumb')
}

/** The output of the process: stdout and stderr with colours as `colorsFor` decides. */
export function processOutput(env: NodeJS.ProcessEnv = process.env): Output {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    colors: colorsFor(process.stdout, env),
    errColors: colorsFor(process.stderr, env),
    // A terminal of no width (some ptys) would make the spinner's line count infinite.
    interactive:
      process.stderr.isTTY === true &&
      process.stderr.columns > 0 &&
      env.TERM !== 'dumb' &&
      env.CI === undefined,
    now: () => new Date(),
  }
}

/** One JSON document, indented, for `--json`. Dates print as ISO strings. */
export function printJson(output: Output, value: unknown): void {
  output.out(`${JSON.stringify(value, null, 2)}\n`)
}

/** One JSON document on one line, for `tail --json` (JSON Lines). */
export function printJsonLine(output: Output, value: unknown): void {
  output.out(`${JSON.stringify(value)}\n`)
}

/** The status in its colour: green done, red failed or timed out, yellow waiting… */
export function status(colors: Colors, value: ExecutionStatus | null | undefined): string {
  if (!value) return colors.dim('-')
  switch (value) {
    case 'completed':
      return colors.green(value)
    case 'failed':
    case 'timed_out':
      return colors.red(value)
    case 'cancelled':
      return colors.gray(value)
    case 'running':
      return colors.cyan(value)
    case 'waiting':
      return colors.yellow(value)
    case 'queued':
      return colors.blue(value)
  }
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1_000],
]
const relativeFormat = new Intl.RelativeTimeFormat('en', { numeric: 'always', style: 'narrow' })

/** `3s ago`, `5m ago`, `in 2h`, `just now`; `-` for no date. Days from 2 on. */
export function relativeTime(date: Date | null | undefined, now: Date): string {
  if (!date) return '-'
  const deltaMs = date.getTime() - now.getTime()
  if (Math.abs(deltaMs) < 1_000) return 'just now'
  for (const [unit, ms] of UNITS) {
    if (Math.abs(deltaMs) >= ms || unit === 'second') {
      return relativeFormat.format(Math.trunc(deltaMs / ms), unit)
    }
  }
  return '-'
}

/** `850ms`, `12.3s`, `4m 05s`, `2h 10m`: how long something took. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`
  if (ms < 3_600_000)
    return `${Math.floor(ms / 60_000)}m ${String(Math.floor((ms % 60_000) / 1_000)).padStart(2, '0')}s`
  return `${Math.floor(ms / 3_600_000)}h ${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`
}

/** An aligned table without borders (as `kubectl get` or `docker ps` print), headers dimmed. */
export function table(colors: Colors, head: string[], rows: string[][]): string {
  const rendered = new Table({
    head: head.map((title) => colors.bold(title)),
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  })
  rendered.push(...rows)
  // cli-table3 pads the last column too: no trailing spaces.
  return `${rendered
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')}\n`
}

/** `key  value` lines, keys aligned and dimmed. Entries with an undefined value are left out. */
export function fields(colors: Colors, entries: [string, string | undefined][]): string {
  const shown = entries.filter((entry): entry is [string, string] => entry[1] !== undefined)
  const width = Math.max(...shown.map(([key]) => key.length))
  return shown.map(([key, value]) => `${colors.dim(key.padEnd(width))}  ${value}\n`).join('')
}

/** A JSON value indented under a heading, for inputs, outputs and payloads. */
export function indentedJson(value: unknown, indent = '  '): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value, null, 2)
  return text
    .split('\n')
    .map((line) => `${indent}${line}`)
    .join('\n')
}

/** A spinner on stderr while `promise` runs, when stderr is a terminal; nothing otherwise. */
export async function withSpinner<T>(output: Output, text: string, promise: Promise<T>): Promise<T> {
  if (!output.interactive) return promise
  const spinner = createSpinner(text, { stream: process.stderr }).start()
  try {
    return await promise
  } finally {
    spinner.clear()
    spinner.stop()
  }
}
