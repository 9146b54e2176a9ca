import type { ExecutionStatus } from '@ratchet/contract'

export const STATUSES: readonly ExecutionStatus[] = [
  'queued',
  'running',
  'waiting',
  'completed',
  'failed',
  'cancelled',
  'timed_out',
]

export const FINISHED: ReadonlySet<ExecutionStatus> = new Set([
  'completed',
  'failed',
  'cancelled',
  'timed_out',
])

/** Colours of the statuses, shared by badges, the graph and the charts. */
export const STATUS_COLOURS: Record<ExecutionStatus, string> = {
  queued: '#64748b',
  running: '#2563eb',
  waiting: '#a855f7',
  completed: '#16a34a',
  failed: '#dc2626',
  cancelled: '#78716c',
  timed_out: '#ea580c',
}

/** `1.2 s`, `340 ms`, `3 m 05 s`, `2 h 10 m`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`
  const m = Math.round(s / 60)
  if (m < 48 * 60) return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`
}

/** `12 s ago`, `in 3 m`. */
export function relative(date: Date | null | undefined, now = Date.now()): string {
  if (!date) return '—'
  const diff = date.getTime() - now
  const text = duration(Math.abs(diff)).replace(/\.\d+ s$/, ' s')
  return diff > 0 ? `in ${text}` : `${text} ago`
}

/** `2026-12-07 07:31:05.123` in local time. */
export function timestamp(date: Date | null | undefined): string {
  if (!date) return '—'
  // The storage's "no time: only an event wakes it" (the largest Date).
  if (date.getTime() >= 8_640_000_000_000_000) return 'when an event wakes it'
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** The end of an id: time-ordered ids (UUIDv7) share their beginning, their end tells them apart. */
export const shortId = (id: string) => (id.length > 12 ? `…${id.slice(-10)}` : id)

export function json(value: unknown): string {
  if (value === undefined) return 'undefined'
  return JSON.stringify(value, null, 2)
}
