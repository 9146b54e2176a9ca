import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { errorMessage, orpc } from '../api'
import { json, relative, timestamp } from '../format'
import { ErrorNote, ExecLink, Loading, PageHeader, StatusBadge } from '../ui'

/** The event log, newest first, with the executions each event started. */
export function EventsPage() {
  const [type, setType] = useState('')
  const [cursors, setCursors] = useState<string[]>([])
  const cursor = cursors[cursors.length - 1]
  const events = useQuery(
    orpc.events.list.queryOptions({
      input: { limit: 50, ...(type ? { type } : {}), ...(cursor ? { cursor } : {}) },
      placeholderData: (previous) => previous,
      refetchInterval: 5_000,
    }),
  )
  return (
    <div className="page">
      <PageHeader title="Events" sub="Published events and the executions they started" />
      <div className="toolbar">
        <label className="field-inline">
          Type
          <input
            aria-label="Event type"
            placeholder="any type"
            value={type}
            onChange={(e) => {
              setType(e.target.value.trim())
              setCursors([])
            }}
          />
        </label>
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
          disabled={!events.data?.nextCursor}
          onClick={() => events.data?.nextCursor && setCursors([...cursors, events.data.nextCursor])}
        >
          Older ›
        </button>
      </div>
      {events.isError && <ErrorNote error={new Error(errorMessage(events.error))} />}
      {events.isPending ? (
        <Loading what="events" />
      ) : (
        <table className="table" aria-label="Events">
          <thead>
            <tr>
              <th>Event</th>
              <th>Type</th>
              <th>Published</th>
              <th>Payload</th>
              <th>Executions started</th>
            </tr>
          </thead>
          <tbody>
            {events.data?.items.map((e) => (
              <tr key={e.id} data-event={e.id}>
                <td className="mono small">{e.id}</td>
                <td>
                  <span className="tag">{e.type}</span>
                </td>
                <td title={timestamp(e.createdAt)}>{relative(e.createdAt)}</td>
                <td>
                  <code className="mono small payload">
                    {json(e.event).replace(/\s+/g, ' ').slice(0, 160)}
                  </code>
                </td>
                <td>
                  {e.executionIds.length === 0 ? (
                    <span className="muted">none (no task listens)</span>
                  ) : (
                    <div className="exec-list">
                      {e.executionIds.map((id) => (
                        <StartedExecution key={id} id={id} />
                      ))}
                    </div>
                  )}
                </td>
              </tr>
            ))}
            {events.data?.items.length === 0 && (
              <tr>
                <td colSpan={5} className="muted pad">
                  No events{type ? ` of type “${type}”` : ''}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </div>
  )
}

function StartedExecution({ id }: { id: string }) {
  const execution = useQuery(orpc.executions.get.queryOptions({ input: { id }, staleTime: 5_000 }))
  return (
    <span className="exec-chip">
      <ExecLink id={id} />
      {execution.data && (
        <>
          <span className="muted small">{execution.data.taskId}</span>
          <StatusBadge status={execution.data.status} />
        </>
      )}
    </span>
  )
}
