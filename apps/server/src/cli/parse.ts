/**
 * Parsers of command-line values for commander (`argParser`). Each throws commander's
 * `InvalidArgumentError`, which commander prints with the argument or option it came from and
 * turns into a usage error (exit 2): nothing is sent to the server.
 */
import { InvalidArgumentError } from 'commander'
import type { ExecutionStatus } from '@ratchet/client'

/** A JSON argument (`'{"to":"ada@example.com"}'`, `42`, `null`). */
export function parseJson(value: string): unknown {
  try {
    return JSON.parse(value) as unknown
  } catch (error) {
    throw new InvalidArgumentError(
      `It is not JSON (${(error as Error).message}); quote it for the shell: '{"key":"value"}'.`,
    )
  }
}

/** An integer from `min` to `max`. */
export function integer(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value)
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max)
      throw new InvalidArgumentError(`an integer from ${min} to ${max}, got "${value}"`)
    return parsed
  }
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A duration: `500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim())
  if (!match) throw new InvalidArgumentError(`a duration such as 500ms, 30s, 5m, 2h or 1d, got "${value}"`)
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']!)
}

export const STATUSES: readonly ExecutionStatus[] = [
  'queued',
  'running',
  'waiting',
  'completed',
  'failed',
  'cancelled',
  'timed_out',
]

/** `--status failed,timed_out` (and repeatable): the statuses given so far plus these. */
export function parseStatuses(value: string, previous: ExecutionStatus[] = []): ExecutionStatus[] {
  const statuses = value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
  for (const status of statuses) {
    if (!STATUSES.includes(status as ExecutionStatus))
      throw new InvalidArgumentError(`"${status}" is not a status; one of ${STATUSES.join(', ')}`)
  }
  return [...previous, ...(statuses as ExecutionStatus[])]
}
