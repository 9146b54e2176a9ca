import type { ExecutionStatus, StoredError } from '@ratchet/contract'
import { useState, type ReactNode } from 'react'
import { Link } from 'wouter'
import { json, shortId, STATUS_COLOURS } from './format'

export function StatusBadge({ status }: { status: ExecutionStatus }) {
  return (
    <span className={`badge status-${status}`} data-status={status}>
      <span className="dot" style={{ background: STATUS_COLOURS[status] }} />
      {status.replace('_', ' ')}
    </span>
  )
}

export function ExecLink({ id, full = false }: { id: string; full?: boolean }) {
  return (
    <Link href={`/executions/${encodeURIComponent(id)}`} className="mono link" title={id}>
      {full ? id : shortId(id)}
    </Link>
  )
}

export function Card({
  title,
  actions,
  children,
  className,
}: {
  title?: ReactNode
  actions?: ReactNode
  children: ReactNode
  className?: string
}) {
  return (
    <section className={`card ${className ?? ''}`}>
      {(title !== undefined || actions !== undefined) && (
        <header className="card-head">
          <h2>{title}</h2>
          <div className="card-actions">{actions}</div>
        </header>
      )}
      <div className="card-body">{children}</div>
    </section>
  )
}

export function JsonView({ value, empty = 'none' }: { value: unknown; empty?: string }) {
  if (value === undefined || value === null) return <div className="muted">{empty}</div>
  return <pre className="json">{json(value)}</pre>
}

/** An error with its code, stack and the chain of its causes. */
export function ErrorView({ error }: { error: StoredError }) {
  const chain: StoredError[] = []
  for (let e: StoredError | undefined = error; e && chain.length < 10; e = e.cause) chain.push(e)
  return (
    <div className="error-view">
      {chain.map((e, i) => (
        <div key={i} className="error-item">
          {i > 0 && <div className="caused-by">caused by</div>}
          <div className="error-title">
            <strong>{e.name}</strong>
            {e.code && <span className="tag">{e.code}</span>}
            {i === 0 && <span className="tag">{e.retryable ? 'retryable' : 'not retryable'}</span>}
          </div>
          <div className="error-message">{e.message}</div>
          {e.data && Object.keys(e.data).length > 0 && <JsonView value={e.data} />}
          {e.stack && <StackView stack={e.stack} />}
        </div>
      ))}
    </div>
  )
}

function StackView({ stack }: { stack: string }) {
  const [open, setOpen] = useState(true)
  return (
    <div>
      <button type="button" className="btn-link" onClick={() => setOpen(!open)}>
        {open ? 'hide stack' : 'show stack'}
      </button>
      {open && <pre className="stack">{stack}</pre>}
    </div>
  )
}

export function Fields({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="fields">
      {items.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  )
}

export function Loading({ what }: { what: string }) {
  return <div className="muted pad">Loading {what}…</div>
}

export function ErrorNote({ error }: { error: unknown }) {
  return <div className="note note-error">{error instanceof Error ? error.message : String(error)}</div>
}

export function PageHeader({
  title,
  sub,
  actions,
}: {
  title: ReactNode
  sub?: ReactNode
  actions?: ReactNode
}) {
  return (
    <div className="page-head">
      <div>
        <h1>{title}</h1>
        {sub && <div className="sub">{sub}</div>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </div>
  )
}
