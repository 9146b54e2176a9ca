import type { Execution } from '@ratchet/contract'
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState, type FormEvent } from 'react'
import { Link } from 'wouter'
import { client, errorMessage, orpc } from '../api'
import { duration, FINISHED, json, relative, timestamp } from '../format'
import { useLiveChanges } from '../live'
import {
  Card,
  ErrorNote,
  ErrorView,
  ExecLink,
  Fields,
  JsonView,
  Loading,
  PageHeader,
  StatusBadge,
} from '../ui'
import { ChildTree } from './ChildTree'
import { Waterfall } from './Waterfall'

/** One execution: its state, payloads, steps, history, children and the actions on it. */
export function ExecutionPage({ id }: { id: string }) {
  const queryClient = useQueryClient()
  const execution = useQuery(orpc.executions.get.queryOptions({ input: { id } }))
  const rootId = execution.data?.rootId
  useLiveChanges({
    ...(rootId ? { rootId } : {}),
    onChange: () => void queryClient.invalidateQueries({ queryKey: orpc.executions.key() }),
  })
  if (execution.isPending) return <Loading what="execution" />
  if (execution.isError) return <ErrorNote error={new Error(errorMessage(execution.error))} />
  const e = execution.data
  return (
    <div className="page">
      <PageHeader
        title={
          <>
            <span className="mono">{e.id}</span> <StatusBadge status={e.status} />
          </>
        }
        sub={
          <>
            task{' '}
            <Link href={`/tasks/${encodeURIComponent(e.taskId)}`} className="link">
              {e.taskId}
            </Link>{' '}
            · created {relative(e.createdAt)} ·{' '}
            <Link href={`/executions/${encodeURIComponent(e.id)}/graph`} className="link">
              workflow graph
            </Link>
          </>
        }
        actions={<Actions execution={e} />}
      />
      <div className="grid-2">
        <Card title="Summary">
          <Fields
            items={[
              ['Attempt', `${e.attempt} of ${e.maxAttempts}`],
              ['Runs', e.runs],
              ['Failures', e.failures],
              ['Recoveries', `${e.recoveries} / ${e.maxRecoveries}`],
              ['Priority', e.priority],
              ['Timeout', duration(e.timeoutMs)],
              ['Created', timestamp(e.createdAt)],
              ['Run at', timestamp(e.runAt)],
              ['Started', timestamp(e.startedAt)],
              ['Finished', timestamp(e.finishedAt)],
              [
                'Duration',
                e.startedAt ? duration((e.finishedAt ?? new Date()).getTime() - e.startedAt.getTime()) : '—',
              ],
              ['Deadline', timestamp(e.deadlineAt)],
              ['Parent', e.parentId ? <ExecLink id={e.parentId} full /> : '—'],
              ['Root', e.rootId === e.id ? 'itself' : <ExecLink id={e.rootId} full />],
              ['Idempotency key', e.idempotencyKey ?? '—'],
            ]}
          />
        </Card>
        <div className="stack-col">
          <Card title="Input">
            <JsonView value={e.input} empty="no input" />
          </Card>
          {e.status === 'completed' ? (
            <Card title="Output">
              <JsonView value={e.output} empty="no output (undefined)" />
            </Card>
          ) : e.error ? (
            <Card title={FINISHED.has(e.status) ? 'Error' : 'Last error (retrying)'} className="card-error">
              <ErrorView error={e.error} />
            </Card>
          ) : null}
        </div>
      </div>
      <Card title="Steps and waits">
        <Waterfall execution={e} />
      </Card>
      <div className="grid-2">
        <Card title="Children">
          <ChildTree execution={e} />
        </Card>
        <Card title="History">
          <History id={e.id} />
        </Card>
      </div>
    </div>
  )
}

function Actions({ execution: e }: { execution: Execution }) {
  const queryClient = useQueryClient()
  const [panel, setPanel] = useState<'signal' | 'wakeup' | null>(null)
  const [message, setMessage] = useState<string | null>(null)
  const done = (text: string) => {
    setMessage(text)
    setPanel(null)
    void queryClient.invalidateQueries({ queryKey: orpc.executions.key() })
  }
  const cancel = useMutation({
    mutationFn: () => client.executions.cancel({ id: e.id }),
    onSuccess: (x) => done(`Cancelled: now ${x.status}`),
    onError: (err) => setMessage(errorMessage(err)),
  })
  const retry = useMutation({
    mutationFn: () => client.executions.retry({ id: e.id }),
    onSuccess: (x) => done(`Retried: now ${x.status}`),
    onError: (err) => setMessage(errorMessage(err)),
  })
  const finished = FINISHED.has(e.status)
  return (
    <div className="actions-wrap">
      <div className="btn-row">
        <button
          type="button"
          className="btn btn-danger"
          disabled={finished || cancel.isPending}
          onClick={() => cancel.mutate()}
        >
          Cancel
        </button>
        <button
          type="button"
          className="btn"
          disabled={
            !(e.status === 'failed' || e.status === 'timed_out' || e.status === 'cancelled') ||
            retry.isPending
          }
          onClick={() => retry.mutate()}
        >
          Retry
        </button>
        <button
          type="button"
          className="btn"
          disabled={finished}
          onClick={() => setPanel(panel === 'signal' ? null : 'signal')}
        >
          Signal…
        </button>
        <button
          type="button"
          className="btn"
          disabled={finished}
          onClick={() => setPanel(panel === 'wakeup' ? null : 'wakeup')}
        >
          Wake up…
        </button>
      </div>
      {panel === 'signal' && <SignalForm id={e.id} onDone={done} onError={setMessage} />}
      {panel === 'wakeup' && <WakeupForm id={e.id} onDone={done} onError={setMessage} />}
      {message && (
        <div className="note note-inline" role="status">
          {message}
        </div>
      )}
    </div>
  )
}

function parseJson(text: string): unknown {
  return text.trim() === '' ? null : JSON.parse(text)
}

function SignalForm({
  id,
  onDone,
  onError,
}: {
  id: string
  onDone: (m: string) => void
  onError: (m: string) => void
}) {
  const [name, setName] = useState('')
  const [payload, setPayload] = useState('')
  const submit = (event: FormEvent) => {
    event.preventDefault()
    let value: unknown
    try {
      value = parseJson(payload)
    } catch (err) {
      return onError(`payload is not JSON: ${errorMessage(err)}`)
    }
    client.executions.signal({ id, name, payload: value }).then(
      () => onDone(`Signal “${name}” sent`),
      (err: unknown) => onError(errorMessage(err)),
    )
  }
  return (
    <form className="popover" onSubmit={submit} aria-label="Send a signal">
      <label className="field">
        <span>Signal name</span>
        <input name="signalName" value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      <label className="field">
        <span>Payload (JSON)</span>
        <textarea
          name="signalPayload"
          rows={3}
          className="mono"
          value={payload}
          onChange={(e) => setPayload(e.target.value)}
        />
      </label>
      <button type="submit" className="btn btn-primary">
        Send signal
      </button>
    </form>
  )
}

function WakeupForm({
  id,
  onDone,
  onError,
}: {
  id: string
  onDone: (m: string) => void
  onError: (m: string) => void
}) {
  const steps = useQuery(orpc.executions.steps.queryOptions({ input: { id, limit: 500 } }))
  const pending = steps.data?.items.find((s) => s.kind === 'wakeup' && !s.completedAt)?.wakeupKey ?? ''
  const [key, setKey] = useState<string | null>(null)
  const [output, setOutput] = useState('')
  const submit = (event: FormEvent) => {
    event.preventDefault()
    let value: unknown
    try {
      value = parseJson(output)
    } catch (err) {
      return onError(`output is not JSON: ${errorMessage(err)}`)
    }
    const wakeupKey = key ?? pending
    client.executions.wakeup({ key: wakeupKey, output: value }).then(
      () => onDone(`Woke up “${wakeupKey}”`),
      (err: unknown) => onError(errorMessage(err)),
    )
  }
  return (
    <form className="popover" onSubmit={submit} aria-label="Wake up">
      <label className="field">
        <span>Wake-up key</span>
        <input name="wakeupKey" value={key ?? pending} onChange={(e) => setKey(e.target.value)} required />
      </label>
      <label className="field">
        <span>Output (JSON)</span>
        <textarea
          name="wakeupOutput"
          rows={3}
          className="mono"
          value={output}
          onChange={(e) => setOutput(e.target.value)}
        />
      </label>
      <button type="submit" className="btn btn-primary">
        Wake up
      </button>
    </form>
  )
}

function History({ id }: { id: string }) {
  const history = useInfiniteQuery(
    orpc.executions.history.infiniteOptions({
      input: (cursor: string | undefined) => ({ id, limit: 100, ...(cursor ? { cursor } : {}) }),
      initialPageParam: undefined,
      getNextPageParam: (page) => page.nextCursor ?? undefined,
    }),
  )
  if (history.isPending) return <Loading what="history" />
  if (history.isError) return <ErrorNote error={new Error(errorMessage(history.error))} />
  const items = history.data.pages.flatMap((p) => p.items)
  const first = items[0]?.at.getTime() ?? 0
  return (
    <div>
      <ol className="timeline" aria-label="History">
        {items.map((h) => (
          <li key={h.seq} className={`tl-${h.event}`}>
            <span className="tl-time mono" title={timestamp(h.at)}>
              +{duration(h.at.getTime() - first)}
            </span>
            <span className="tl-dot" />
            <span className="tl-body">
              {h.event === 'status' ? (
                <>
                  {h.from ? <StatusBadge status={h.from} /> : <span className="muted">new</span>} →{' '}
                  <StatusBadge status={h.to} />
                </>
              ) : (
                <>
                  <span className="tag">{h.event}</span> <span className="mono">{h.name}</span>
                </>
              )}
              <span className="muted small"> run {h.run}</span>
              {h.detail !== null && h.detail !== undefined && (
                <details>
                  <summary className="muted small">detail</summary>
                  <pre className="json">{json(h.detail)}</pre>
                </details>
              )}
            </span>
          </li>
        ))}
      </ol>
      {history.hasNextPage && (
        <button
          type="button"
          className="btn"
          disabled={history.isFetchingNextPage}
          onClick={() => void history.fetchNextPage()}
        >
          Load more
        </button>
      )}
    </div>
  )
}
