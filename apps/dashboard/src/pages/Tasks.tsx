import type { TaskInfo } from '@ratchet/contract'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { lazy, Suspense, useState, type FormEvent } from 'react'
import { Link, useLocation } from 'wouter'
import { client, errorMessage, orpc } from '../api'
import { duration, relative, STATUSES } from '../format'
import { useLiveChanges } from '../live'
import { Card, ErrorNote, Fields, JsonView, Loading, PageHeader, StatusBadge } from '../ui'
import { initialValue, SchemaForm } from './SchemaForm'

// uPlot is loaded with the chart.
const ThroughputChart = lazy(() => import('./ThroughputChart').then((m) => ({ default: m.ThroughputChart })))

type TaskStats = Awaited<ReturnType<typeof client.stats.tasks>>['tasks'][number]

function useTaskStats() {
  const queryClient = useQueryClient()
  const stats = useQuery(orpc.stats.tasks.queryOptions({ input: {} }))
  useLiveChanges({ onChange: () => void queryClient.invalidateQueries({ queryKey: orpc.stats.key() }) })
  return stats
}

const statusLink = (taskId: string, status: string) =>
  `/executions?task=${encodeURIComponent(taskId)}&status=${encodeURIComponent(status)}`

function Counts({ taskId, stats }: { taskId: string; stats: TaskStats | undefined }) {
  return (
    <>
      {STATUSES.map((s) => (
        <td key={s} className="num">
          {stats && stats.counts[s] > 0 ? (
            <Link href={statusLink(taskId, s)} className={`count status-fg-${s}`}>
              {stats.counts[s]}
            </Link>
          ) : (
            <span className="muted">0</span>
          )}
        </td>
      ))}
    </>
  )
}

/** Every registered task with its counts per status and queue depth. */
export function TasksPage() {
  const tasks = useQuery(orpc.tasks.list.queryOptions())
  const stats = useTaskStats()
  if (tasks.isPending) return <Loading what="tasks" />
  if (tasks.isError) return <ErrorNote error={new Error(errorMessage(tasks.error))} />
  const byTask = new Map(stats.data?.tasks.map((t) => [t.taskId, t]))
  return (
    <div className="page">
      <PageHeader title="Tasks" sub={`${tasks.data.tasks.length} registered`} />
      <table className="table" aria-label="Tasks">
        <thead>
          <tr>
            <th>Task</th>
            <th>Description</th>
            {STATUSES.map((s) => (
              <th key={s} className="num">
                {s.replace('_', ' ')}
              </th>
            ))}
            <th className="num">Queue depth</th>
            <th>Oldest queued</th>
          </tr>
        </thead>
        <tbody>
          {tasks.data.tasks.map((t) => {
            const s = byTask.get(t.id)
            return (
              <tr key={t.id} data-task={t.id}>
                <td>
                  <Link href={`/tasks/${encodeURIComponent(t.id)}`} className="link strong">
                    {t.id}
                  </Link>
                  {t.on.length > 0 && <span className="tag">on {t.on.join(', ')}</span>}
                  {s?.pausedAt && (
                    <span className="tag tag-paused" title={`paused ${relative(s.pausedAt)}`}>
                      paused
                    </span>
                  )}
                </td>
                <td className="muted ellipsis">{t.description ?? ''}</td>
                <Counts taskId={t.id} stats={s} />
                <td className="num">{s?.queueDepth ?? 0}</td>
                <td>{s?.oldestQueuedAt ? relative(s.oldestQueuedAt) : <span className="muted">—</span>}</td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </div>
  )
}

/** One task: its schema, counts, throughput and failure rate over time, and an enqueue form. */
export function TaskPage({ id }: { id: string }) {
  const tasks = useQuery(orpc.tasks.list.queryOptions())
  const stats = useTaskStats()
  if (tasks.isPending) return <Loading what="task" />
  if (tasks.isError) return <ErrorNote error={new Error(errorMessage(tasks.error))} />
  const task = tasks.data.tasks.find((t) => t.id === id)
  if (!task) return <ErrorNote error={new Error(`no task “${id}” on this server`)} />
  const s = stats.data?.tasks.find((x) => x.taskId === id)
  return (
    <div className="page">
      <PageHeader
        title={task.id}
        sub={task.description ?? (task.key && task.key !== task.id ? `key ${task.key}` : undefined)}
        actions={
          <>
            <PauseButton taskId={id} pausedAt={s?.pausedAt ?? null} />
            <Link href={`/executions?task=${encodeURIComponent(id)}`} className="btn">
              Executions
            </Link>
          </>
        }
      />
      {s?.pausedAt && (
        <div className="note" role="status">
          Paused {relative(s.pausedAt)}: enqueues are accepted and running attempts finish, but nothing more
          of {id} starts until it is resumed.
        </div>
      )}
      <div className="stat-row">
        {STATUSES.map((status) => (
          <Link key={status} href={statusLink(id, status)} className="stat">
            <StatusBadge status={status} />
            <span className="stat-num">{s?.counts[status] ?? 0}</span>
          </Link>
        ))}
        <div className="stat">
          <span className="muted small">queue depth</span>
          <span className="stat-num">{s?.queueDepth ?? 0}</span>
        </div>
      </div>
      <Card title="Throughput and failure rate">
        <Suspense fallback={<Loading what="chart" />}>
          <ThroughputChart taskId={id} />
        </Suspense>
      </Card>
      <div className="grid-2">
        <Card title="Enqueue">
          <EnqueueForm task={task} />
        </Card>
        <div className="stack-col">
          <Card title="Input schema">
            <JsonView value={task.inputSchema} empty="no JSON Schema (the schema library gives none)" />
          </Card>
          <Card title="Settings">
            <Fields
              items={[
                ['Timeout', duration(task.timeoutMs)],
                ['Max attempts', task.retry.maxAttempts],
                [
                  'Backoff',
                  `${duration(task.retry.backoff.initialMs)} × ${task.retry.backoff.factor}, max ${duration(task.retry.backoff.maxMs)}`,
                ],
                ['Priority', task.priority],
                ['Max recoveries', task.maxRecoveries],
                ['Started by events', task.on.length ? task.on.join(', ') : '—'],
                [
                  'Debounce',
                  task.debounce
                    ? `${duration(task.debounce.periodMs)} quiet${task.debounce.maxWaitMs === null ? '' : `, at most ${duration(task.debounce.maxWaitMs)}`}`
                    : '—',
                ],
              ]}
            />
          </Card>
        </div>
      </div>
    </div>
  )
}

/** Pauses or resumes the task's queue (on every replica); the stats show the new state. */
function PauseButton({ taskId, pausedAt }: { taskId: string; pausedAt: Date | null }) {
  const queryClient = useQueryClient()
  const [error, setError] = useState<string | null>(null)
  const toggle = useMutation({
    mutationFn: () => (pausedAt ? client.tasks.resume({ taskId }) : client.tasks.pause({ taskId })),
    onSuccess: () => {
      setError(null)
      return queryClient.invalidateQueries({ queryKey: orpc.stats.key() })
    },
    onError: (e) => setError(errorMessage(e)),
  })
  return (
    <>
      {error && (
        <span className="note note-error small" role="alert">
          {error}
        </span>
      )}
      <button type="button" className="btn" disabled={toggle.isPending} onClick={() => toggle.mutate()}>
        {pausedAt ? 'Resume queue' : 'Pause queue'}
      </button>
    </>
  )
}

function EnqueueForm({ task }: { task: TaskInfo }) {
  const [, navigate] = useLocation()
  const schema = task.inputSchema ?? undefined
  const [value, setValue] = useState<unknown>(() => initialValue(schema))
  const [key, setKey] = useState('')
  const [delay, setDelay] = useState('')
  const [error, setError] = useState<string | null>(null)
  const enqueue = useMutation({
    mutationFn: () =>
      client.executions.enqueue({
        taskId: task.id,
        input: value,
        options: {
          ...(key ? { idempotencyKey: key } : {}),
          ...(delay ? { delayMs: Number(delay) } : {}),
        },
      }),
    onSuccess: ({ execution }) => navigate(`/executions/${encodeURIComponent(execution.id)}`),
    onError: (e) => setError(errorMessage(e)),
  })
  const submit = (event: FormEvent) => {
    event.preventDefault()
    setError(null)
    enqueue.mutate()
  }
  return (
    <form onSubmit={submit} aria-label="Enqueue" className="enqueue-form">
      {schema ? (
        <SchemaForm schema={schema} value={value} onChange={setValue} />
      ) : (
        <div className="muted">This task publishes no JSON Schema: the input is sent as {'{}'}.</div>
      )}
      <details className="options">
        <summary>Options</summary>
        <label className="field">
          <span>Idempotency key</span>
          <input name="idempotencyKey" value={key} onChange={(e) => setKey(e.target.value)} />
        </label>
        <label className="field">
          <span>Delay (ms)</span>
          <input
            name="delayMs"
            type="number"
            min={0}
            value={delay}
            onChange={(e) => setDelay(e.target.value)}
          />
        </label>
      </details>
      <div className="muted small">
        Input: <code className="mono">{JSON.stringify(value)}</code>
      </div>
      {error && (
        <div className="note note-error" role="alert">
          {error}
        </div>
      )}
      <button type="submit" className="btn btn-primary" disabled={enqueue.isPending}>
        Enqueue {task.id}
      </button>
    </form>
  )
}
