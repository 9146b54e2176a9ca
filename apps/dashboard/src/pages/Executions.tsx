import type { ExecutionStatus, ListInput } from '@ratchet/contract'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useEffect, useMemo, useState, type FormEvent } from 'react'
import { Link, useLocation, useSearch } from 'wouter'
import { client, errorMessage, orpc } from '../api'
import { duration, relative, shortId, STATUSES, timestamp } from '../format'
import { useLiveChanges } from '../live'
import { ErrorNote, ExecLink, Loading, PageHeader, StatusBadge } from '../ui'

const PAGE_SIZE = 50

interface Filters {
  task?: string
  status: ExecutionStatus[]
  from?: string
  to?: string
  parent?: string
  root?: string
  key?: string
}

function readFilters(search: string): Filters {
  const p = new URLSearchParams(search)
  const get = (k: string) => p.get(k) || undefined
  return {
    task: get('task'),
    status: p.getAll('status').filter((s): s is ExecutionStatus => (STATUSES as string[]).includes(s)),
    from: get('from'),
    to: get('to'),
    parent: get('parent'),
    root: get('root'),
    key: get('key'),
  }
}

function writeFilters(f: Filters): string {
  const p = new URLSearchParams()
  for (const k of ['task', 'from', 'to', 'parent', 'root', 'key'] as const) if (f[k]) p.set(k, f[k])
  for (const s of f.status) p.append('status', s)
  const text = p.toString()
  return text ? `?${text}` : ''
}

function toInput(f: Filters, cursor: string | undefined): ListInput {
  return {
    limit: PAGE_SIZE,
    ...(f.task ? { taskId: f.task } : {}),
    ...(f.status.length ? { status: f.status } : {}),
    ...(f.from ? { createdAfter: new Date(f.from) } : {}),
    ...(f.to ? { createdBefore: new Date(f.to) } : {}),
    ...(f.parent ? { parentId: f.parent } : {}),
    ...(f.root ? { rootId: f.root } : {}),
    ...(f.key ? { idempotencyKey: f.key } : {}),
    ...(cursor ? { cursor } : {}),
  }
}

/** Executions, newest first: filters in the URL, cursor pages, live refresh, bulk actions. */
export function ExecutionsPage() {
  const search = useSearch()
  const [, navigate] = useLocation()
  const filters = useMemo(() => readFilters(search), [search])
  const setFilters = (f: Filters) => navigate(`/executions${writeFilters(f)}`)
  const [cursors, setCursors] = useState<string[]>([])
  const cursor = cursors[cursors.length - 1]
  useEffect(() => setCursors([]), [search])
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [bulkResult, setBulkResult] = useState<string | null>(null)
  const queryClient = useQueryClient()

  const input = toInput(filters, cursor)
  const list = useQuery(orpc.executions.list.queryOptions({ input, placeholderData: (previous) => previous }))
  const live = useLiveChanges({
    ...(filters.task ? { taskId: filters.task } : {}),
    ...(filters.root ? { rootId: filters.root } : {}),
    onChange: () => void queryClient.invalidateQueries({ queryKey: orpc.executions.list.key() }),
  })

  const bulk = useMutation({
    mutationFn: async ({ action, ids }: { action: 'cancel' | 'retry'; ids: string[] }) => {
      const { results } =
        action === 'cancel'
          ? await client.executions.cancelMany({ ids })
          : await client.executions.retryMany({ ids })
      return { action, results }
    },
    onSuccess: ({ action, results }) => {
      const ok = results.filter((r) => r.ok).length
      const failed = results.filter((r) => !r.ok)
      setBulkResult(
        `${action === 'cancel' ? 'Cancelled' : 'Retried'} ${ok} of ${results.length}` +
          (failed.length
            ? `; ${failed.map((r) => `${shortId(r.id)}: ${r.error?.code ?? 'failed'}`).join(', ')}`
            : ''),
      )
      setSelected(new Set())
      void queryClient.invalidateQueries({ queryKey: orpc.executions.key() })
    },
    onError: (e) => setBulkResult(errorMessage(e)),
  })

  const items = list.data?.items ?? []
  const allSelected = items.length > 0 && items.every((e) => selected.has(e.id))
  const toggle = (id: string) => {
    const next = new Set(selected)
    if (next.has(id)) next.delete(id)
    else next.add(id)
    setSelected(next)
  }

  return (
    <div className="page">
      <PageHeader
        title="Executions"
        sub={
          <span className={`live ${live ? 'on' : ''}`} title="Updated from the server's change stream">
            <span className="pulse" /> {live ? 'live' : 'connecting…'}
          </span>
        }
      />
      <FilterBar filters={filters} onChange={setFilters} />
      <div className="toolbar">
        <span className="muted small">
          {selected.size > 0
            ? `${selected.size} selected`
            : `${items.length} shown${list.data?.nextCursor ? '+' : ''}`}
        </span>
        <button
          type="button"
          className="btn btn-danger"
          disabled={selected.size === 0 || bulk.isPending}
          onClick={() => bulk.mutate({ action: 'cancel', ids: [...selected] })}
        >
          Cancel selected
        </button>
        <button
          type="button"
          className="btn"
          disabled={selected.size === 0 || bulk.isPending}
          onClick={() => bulk.mutate({ action: 'retry', ids: [...selected] })}
        >
          Retry selected
        </button>
        {bulkResult && (
          <span className="note note-inline" role="status">
            {bulkResult}
          </span>
        )}
        <span className="spacer" />
        <button
          type="button"
          className="btn"
          disabled={cursors.length === 0}
          onClick={() => setCursors(cursors.slice(0, -1))}
        >
          ‹ Newer
        </button>
        <button
          type="button"
          className="btn"
          disabled={!list.data?.nextCursor}
          onClick={() => list.data?.nextCursor && setCursors([...cursors, list.data.nextCursor])}
        >
          Older ›
        </button>
      </div>
      {list.isError && <ErrorNote error={new Error(errorMessage(list.error))} />}
      {list.isPending ? (
        <Loading what="executions" />
      ) : (
        <table className="table" aria-label="Executions">
          <thead>
            <tr>
              <th className="check">
                <input
                  type="checkbox"
                  aria-label="Select all"
                  checked={allSelected}
                  onChange={() => setSelected(allSelected ? new Set() : new Set(items.map((e) => e.id)))}
                />
              </th>
              <th>Execution</th>
              <th>Task</th>
              <th>Status</th>
              <th className="num">Attempt</th>
              <th>Created</th>
              <th className="num">Duration</th>
              <th>Parent</th>
              <th>Key</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id} className={selected.has(e.id) ? 'selected' : ''} data-id={e.id}>
                <td className="check">
                  <input
                    type="checkbox"
                    aria-label={`Select ${e.id}`}
                    checked={selected.has(e.id)}
                    onChange={() => toggle(e.id)}
                  />
                </td>
                <td>
                  <ExecLink id={e.id} />
                </td>
                <td>
                  <Link href={`/tasks/${encodeURIComponent(e.taskId)}`} className="link">
                    {e.taskId}
                  </Link>
                </td>
                <td>
                  <StatusBadge status={e.status} />
                  {e.error && e.status !== 'completed' && e.status !== 'cancelled' && (
                    <span className="err-inline" title={e.error.message}>
                      {e.error.code ?? e.error.name}
                    </span>
                  )}
                </td>
                <td className="num">
                  {e.attempt}/{e.maxAttempts}
                </td>
                <td title={timestamp(e.createdAt)}>{relative(e.createdAt)}</td>
                <td className="num">
                  {e.startedAt
                    ? duration((e.finishedAt ?? new Date()).getTime() - e.startedAt.getTime())
                    : '—'}
                </td>
                <td>{e.parentId ? <ExecLink id={e.parentId} /> : <span className="muted">—</span>}</td>
                <td className="mono small">{e.idempotencyKey ?? ''}</td>
              </tr>
            ))}
            {items.length === 0 && (
              <tr>
                <td colSpan={9} className="muted pad">
                  No executions match.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </div>
  )
}

function FilterBar({ filters, onChange }: { filters: Filters; onChange: (f: Filters) => void }) {
  const tasks = useQuery(orpc.tasks.list.queryOptions({ staleTime: 60_000 }))
  const [, navigate] = useLocation()
  const [query, setQuery] = useState('')

  /** An execution id opens it; anything else is taken as an idempotency key. */
  const submitSearch = (event: FormEvent) => {
    event.preventDefault()
    const text = query.trim()
    if (!text) return
    client.executions.get({ id: text }).then(
      (e) => navigate(`/executions/${encodeURIComponent(e.id)}`),
      () => onChange({ ...filters, key: text }),
    )
  }
  const toggleStatus = (s: ExecutionStatus) =>
    onChange({
      ...filters,
      status: filters.status.includes(s) ? filters.status.filter((x) => x !== s) : [...filters.status, s],
    })

  return (
    <div className="filters">
      <form onSubmit={submitSearch} className="search">
        <input
          aria-label="Search by execution id or idempotency key"
          placeholder="Execution id or idempotency key"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <button type="submit" className="btn">
          Search
        </button>
      </form>
      <div className="filter-row">
        <label className="field-inline">
          Task
          <select
            aria-label="Task"
            value={filters.task ?? ''}
            onChange={(e) => onChange({ ...filters, task: e.target.value || undefined })}
          >
            <option value="">all</option>
            {tasks.data?.tasks.map((t) => (
              <option key={t.id} value={t.id}>
                {t.id}
              </option>
            ))}
          </select>
        </label>
        <div className="chips" role="group" aria-label="Status">
          {STATUSES.map((s) => (
            <button
              type="button"
              key={s}
              className={`chip status-${s} ${filters.status.includes(s) ? 'on' : ''}`}
              aria-pressed={filters.status.includes(s)}
              onClick={() => toggleStatus(s)}
            >
              {s.replace('_', ' ')}
            </button>
          ))}
        </div>
        <label className="field-inline">
          From
          <input
            type="datetime-local"
            aria-label="Created after"
            value={filters.from ?? ''}
            onChange={(e) => onChange({ ...filters, from: e.target.value || undefined })}
          />
        </label>
        <label className="field-inline">
          To
          <input
            type="datetime-local"
            aria-label="Created before"
            value={filters.to ?? ''}
            onChange={(e) => onChange({ ...filters, to: e.target.value || undefined })}
          />
        </label>
        <TextFilter
          label="Parent"
          value={filters.parent}
          onChange={(v) => onChange({ ...filters, parent: v })}
        />
        <TextFilter label="Root" value={filters.root} onChange={(v) => onChange({ ...filters, root: v })} />
        {filters.key && (
          <span className="chip on">
            key: {filters.key}{' '}
            <button
              type="button"
              className="btn-link"
              aria-label="Clear key"
              onClick={() => onChange({ ...filters, key: undefined })}
            >
              ×
            </button>
          </span>
        )}
        {writeFilters(filters) && (
          <button type="button" className="btn-link" onClick={() => onChange({ status: [] })}>
            clear filters
          </button>
        )}
      </div>
    </div>
  )
}

function TextFilter({
  label,
  value,
  onChange,
}: {
  label: string
  value: string | undefined
  onChange: (v: string | undefined) => void
}) {
  const [text, setText] = useState(value ?? '')
  useEffect(() => setText(value ?? ''), [value])
  return (
    <label className="field-inline">
      {label}
      <input
        aria-label={`${label} id`}
        className="mono id-input"
        placeholder="execution id"
        value={text}
        onChange={(e) => setText(e.target.value)}
        onBlur={() => text.trim() !== (value ?? '') && onChange(text.trim() || undefined)}
        onKeyDown={(e) => e.key === 'Enter' && onChange(text.trim() || undefined)}
      />
    </label>
  )
}
