import { useQueryClient } from '@tanstack/react-query'
import { useState, type FormEvent } from 'react'
import { login, SESSION_KEY } from '../api'

/** Exchanges an API key for the session cookie; the key is not kept by the page. */
export function LoginPage() {
  const client = useQueryClient()
  const [apiKey, setApiKey] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  const submit = (event: FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    login(apiKey).then(
      (session) => {
        setApiKey('')
        client.setQueryData(SESSION_KEY, session)
      },
      (e: unknown) => {
        setError(e instanceof Error ? e.message : String(e))
        setBusy(false)
      },
    )
  }

  return (
    <div className="login-wrap">
      <form className="login card" onSubmit={submit} aria-label="Log in">
        <div className="brand brand-dark">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>Ratchet</span>
        </div>
        <p className="muted">Log in with one of the server’s API keys (RATCHET_API_KEYS).</p>
        <label className="field">
          <span>API key</span>
          <input
            name="apiKey"
            type="password"
            autoComplete="current-password"
            autoFocus
            value={apiKey}
            onChange={(e) => setApiKey(e.target.value)}
            required
          />
        </label>
        {error && (
          <div className="note note-error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy || apiKey === ''}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p className="muted small">
          The key is exchanged for an HttpOnly session cookie (8 hours); the page never stores it.
        </p>
      </form>
    </div>
  )
}
