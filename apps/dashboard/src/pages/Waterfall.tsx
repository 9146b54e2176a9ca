import type { Execution } from '@ratchet/contract'
import { useQuery } from '@tanstack/react-query'
import { errorMessage, orpc } from '../api'
import { duration, FINISHED, json, timestamp } from '../format'
import { ErrorNote, ExecLink, Loading } from '../ui'

const WAITS = new Set(['sleep', 'signal', 'wakeup', 'child'])

/**
 * The execution's record as a Gantt-like waterfall: one row per step or wait at its position,
 * a bar from when it was recorded to when it completed (waits drawn hatched: sleeps, signals,
 * wake-ups and children hold no worker), on the execution's own time axis.
 */
export function Waterfall({ execution: e }: { execution: Execution }) {
  const steps = useQuery(orpc.executions.steps.queryOptions({ input: { id: e.id, limit: 500 } }))
  if (steps.isPending) return <Loading what="steps" />
  if (steps.isError) return <ErrorNote error={new Error(errorMessage(steps.error))} />
  const items = steps.data.items
  if (items.length === 0) return <div className="muted">No steps or waits recorded.</div>
  const now = Date.now()
  const start = e.createdAt.getTime()
  const execEnd = e.finishedAt?.getTime() ?? now
  const finished = FINISHED.has(e.status)
  /**
   * When a row ends: its completion; else a sleep's wake time once passed (a short sleep passes
   * in memory and its record is not completed); else the end of the execution (or now).
   */
  const endOf = (s: (typeof items)[number]) =>
    s.completedAt?.getTime() ?? (s.wakeAt && s.wakeAt.getTime() <= execEnd ? s.wakeAt.getTime() : execEnd)
  const end = Math.max(execEnd, ...items.map(endOf))
  const span = Math.max(1, end - start)
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(3)}%`
  const ticks = [0, 0.25, 0.5, 0.75, 1]
  return (
    <div className="waterfall" role="table" aria-label="Steps waterfall">
      <div className="wf-row wf-axis" role="row">
        <div className="wf-label muted small">step / wait</div>
        <div className="wf-track">
          {ticks.map((t) => (
            <span key={t} className="wf-tick" style={{ left: `${t * 100}%` }}>
              {duration(t * span)}
            </span>
          ))}
        </div>
        <div className="wf-dur muted small">duration</div>
      </div>
      <div className="wf-row" role="row">
        <div className="wf-label">
          <strong>execution</strong>
        </div>
        <div className="wf-track">
          <div
            className={`wf-bar wf-exec status-bg-${e.status}`}
            style={{ left: 0, width: pct(e.finishedAt?.getTime() ?? now) }}
          />
        </div>
        <div className="wf-dur mono">{duration((e.finishedAt?.getTime() ?? now) - start)}</div>
      </div>
      {items.map((s) => {
        const from = s.createdAt.getTime()
        const to = endOf(s)
        const pending = s.status === 'waiting' && !finished
        const wait = WAITS.has(s.kind)
        const title = [
          `${s.kind} “${s.name}” #${s.position}`,
          `recorded ${timestamp(s.createdAt)}`,
          s.completedAt ? `completed ${timestamp(s.completedAt)}` : 'not completed',
          s.wakeAt ? `wakes at ${timestamp(s.wakeAt)}` : '',
          s.error ? `error: ${s.error.message}` : '',
        ]
          .filter(Boolean)
          .join('\n')
        return (
          <div className="wf-row" role="row" key={s.position} data-step={s.name}>
            <div className="wf-label" title={s.name}>
              <span className={`tag kind-${s.kind}`}>{s.kind}</span> <span className="mono">{s.name}</span>
              {s.childId && (
                <>
                  {' '}
                  → <ExecLink id={s.childId} />
                </>
              )}
              {s.signalName && s.signalName !== s.name && (
                <span className="muted small"> signal {s.signalName}</span>
              )}
              {s.wakeupKey && <span className="muted small"> key {s.wakeupKey}</span>}
            </div>
            <div className="wf-track">
              <div
                className={`wf-bar ${wait ? 'wf-wait' : 'wf-step'} ${pending ? 'wf-waiting' : ''} ${s.status === 'failed' ? 'wf-failed' : ''}`}
                style={{ left: pct(from), width: `max(3px, ${(((to - from) / span) * 100).toFixed(3)}%)` }}
                title={title}
              />
              {s.wakeAt && pending && s.wakeAt.getTime() <= end && (
                <span
                  className="wf-marker"
                  style={{ left: pct(s.wakeAt.getTime()) }}
                  title={`wakes ${timestamp(s.wakeAt)}`}
                />
              )}
            </div>
            <div className="wf-dur mono">
              {pending ? <span className="muted">waiting {duration(to - from)}</span> : duration(to - from)}
              {s.status === 'failed' && (
                <span className="err-inline" title={s.error ? json(s.error) : ''}>
                  failed
                </span>
              )}
            </div>
          </div>
        )
      })}
    </div>
  )
}
