import { QueryClientProvider, useQuery } from '@tanstack/react-query'
import { lazy, StrictMode, Suspense, type ReactNode } from 'react'
import { createRoot } from 'react-dom/client'
import { Link, Redirect, Route, Switch, useLocation } from 'wouter'
import { fetchSession, logout, queryClient, SESSION_KEY, type SessionInfo } from './api'
import { EventsPage } from './pages/Events'
import { ExecutionPage } from './pages/Execution'
import { ExecutionsPage } from './pages/Executions'
import { LoginPage } from './pages/Login'
import { TaskPage, TasksPage } from './pages/Tasks'
import { Loading } from './ui'
import './styles.css'

// The graph library is the largest dependency: loaded with the page that draws it.
const GraphPage = lazy(() => import('./pages/Graph').then((m) => ({ default: m.GraphPage })))

function App() {
  const session = useQuery({ queryKey: SESSION_KEY, queryFn: fetchSession, staleTime: 60_000 })
  if (session.isPending) return <Loading what="session" />
  if (session.isError)
    return <div className="note note-error">Cannot reach the server: {session.error.message}</div>
  if (session.data === null) return <LoginPage />
  return (
    <Layout session={session.data}>
      <Suspense fallback={<Loading what="page" />}>
        <Switch>
          <Route path="/">
            <Redirect to="/executions" />
          </Route>
          <Route path="/login">
            <Redirect to="/executions" />
          </Route>
          <Route path="/executions" component={ExecutionsPage} />
          <Route path="/executions/:id/graph">{(p) => <GraphPage id={decodeURIComponent(p.id)} />}</Route>
          <Route path="/executions/:id">{(p) => <ExecutionPage id={decodeURIComponent(p.id)} />}</Route>
          <Route path="/tasks" component={TasksPage} />
          <Route path="/tasks/:id">{(p) => <TaskPage id={decodeURIComponent(p.id)} />}</Route>
          <Route path="/events" component={EventsPage} />
          <Route>
            <div className="note">
              No page here. <Link href="/executions">Executions</Link>
            </div>
          </Route>
        </Switch>
      </Suspense>
    </Layout>
  )
}

function NavItem({ href, children }: { href: string; children: ReactNode }) {
  const [location] = useLocation()
  const active = location === href || location.startsWith(`${href}/`)
  return (
    <Link href={href} className={`nav-item ${active ? 'active' : ''}`}>
      {children}
    </Link>
  )
}

function Layout({ session, children }: { session: SessionInfo; children: ReactNode }) {
  return (
    <div className="shell">
      <aside className="sidebar">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={22} height={22} />
          <span>Ratchet</span>
        </div>
        <nav>
          <NavItem href="/executions">Executions</NavItem>
          <NavItem href="/tasks">Tasks</NavItem>
          <NavItem href="/events">Events</NavItem>
        </nav>
        <div className="sidebar-foot">
          {session.authRequired ? (
            <>
              <div className="muted small">
                key <span className="mono">{session.apiKeyName}</span>
              </div>
              <button type="button" className="btn btn-ghost" onClick={() => void logout()}>
                Log out
              </button>
            </>
          ) : (
            <div className="muted small">no API keys: open access (loopback)</div>
          )}
        </div>
      </aside>
      <main className="main">{children}</main>
    </div>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
)
