import type { ReactNode } from 'react';
import { useSession } from './session';
import { LiveProvider, useLiveState } from './live';
import { href, matchPath, navigate, useLocation, type Location } from './lib/router';
import { LoginPage, SsoReturn } from './pages/LoginPage';
import { OverviewPage } from './pages/OverviewPage';
import { ClientsPage } from './pages/ClientsPage';
import { SitePage } from './pages/SitePage';
import { AgentPage } from './pages/AgentPage';
import { ConsolePage } from './pages/ConsolePage';
import { CommandsPage } from './pages/CommandsPage';
import { CommandPage } from './pages/CommandPage';
import { UnassignedPage } from './pages/UnassignedPage';
import { UsersPage } from './pages/UsersPage';
import { AccountPage } from './pages/AccountPage';
import { TwoFactorPage } from './pages/TwoFactorPage';
import { RolloutsPage } from './pages/RolloutsPage';
import { AlertsPage } from './pages/AlertsPage';
import { AlertRulesPage } from './pages/AlertRulesPage';
import { NotificationsPage } from './pages/NotificationsPage';
import { PoliciesPage } from './pages/PoliciesPage';
import { ScriptsPage } from './pages/ScriptsPage';
import { RunScriptPage } from './pages/RunScriptPage';
import { JobPage, JobsPage } from './pages/JobsPage';
import { AlertCount } from './components/AlertCount';

interface Route {
  path: string;
  render: (params: Record<string, string>, loc: Location) => ReactNode;
}

const ROUTES: Route[] = [
  { path: '/', render: () => <OverviewPage /> },
  { path: '/clients', render: () => <ClientsPage /> },
  { path: '/sites/:id', render: (p) => <SitePage key={p.id} id={p.id} /> },
  { path: '/agents/:id', render: (p) => <AgentPage key={p.id} id={p.id} /> },
  { path: '/console', render: (_p, loc) => <ConsolePage initialAgents={(loc.query.get('agents') ?? '').split(',').filter(Boolean)} /> },
  { path: '/commands', render: (_p, loc) => <CommandsPage initialAgent={loc.query.get('agent') ?? ''} /> },
  { path: '/commands/:id', render: (p) => <CommandPage key={p.id} id={p.id} /> },
  { path: '/scripts', render: () => <ScriptsPage /> },
  { path: '/run', render: (_p, loc) => <RunScriptPage key={loc.query.toString()} query={loc.query} /> },
  { path: '/jobs', render: () => <JobsPage /> },
  { path: '/jobs/:id', render: (p) => <JobPage key={p.id} id={p.id} /> },
  { path: '/unassigned', render: () => <UnassignedPage /> },
  { path: '/users', render: () => <UsersPage /> },
  { path: '/updates', render: () => <RolloutsPage /> },
  { path: '/alerts', render: (_p, loc) => <AlertsPage query={loc.query} /> },
  { path: '/alert-rules', render: () => <AlertRulesPage /> },
  { path: '/notifications', render: () => <NotificationsPage /> },
  { path: '/policies', render: () => <PoliciesPage /> },
  { path: '/account', render: () => <AccountPage /> },
  { path: '/account/two-factor', render: () => <TwoFactorPage /> },
];

const NAV: { path: string; label: string; adminOnly?: boolean }[] = [
  { path: '/', label: 'Fleet' },
  { path: '/clients', label: 'Clients & sites' },
  { path: '/console', label: 'Console' },
  { path: '/commands', label: 'Commands' },
  { path: '/scripts', label: 'Scripts' },
  { path: '/jobs', label: 'Jobs' },
  { path: '/unassigned', label: 'Unassigned' },
  { path: '/alerts', label: 'Alerts' },
  { path: '/policies', label: 'Policies' },
  { path: '/updates', label: 'Updates' },
  { path: '/users', label: 'Users', adminOnly: true },
  { path: '/account', label: 'Account' },
];

function LiveIndicator() {
  const state = useLiveState();
  const text = state === 'open' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Live updates interrupted, reconnecting…';
  return (
    <span className={`live live-${state}`} role="status" title="Server event stream">
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

function Shell({ loc }: { loc: Location }) {
  const { session, signOut } = useSession();
  if (!session) return null;
  const user = session.user;
  let content: ReactNode = (
    <div className="page-header">
      <h1>Page not found</h1>
      <p>
        Nothing lives at <code>{loc.path}</code>. <a href={href('/')}>Go to the fleet overview</a>.
      </p>
    </div>
  );
  for (const r of ROUTES) {
    const params = matchPath(r.path, loc.path);
    if (params) {
      content = r.render(params, loc);
      break;
    }
  }
  const current = (path: string) =>
    path === '/'
      ? loc.path === '/' || loc.path.startsWith('/agents')
      : loc.path === path || (path === '/commands' && loc.path.startsWith('/commands/')) || (path === '/jobs' && loc.path.startsWith('/jobs/')) || (path === '/scripts' && loc.path === '/run') || (path === '/clients' && loc.path.startsWith('/sites')) || (path === '/alerts' && (loc.path === '/alert-rules' || loc.path === '/notifications'));
  return (
    <div className="app">
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">GuruRMM</span>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.adminOnly || user.role === 'admin').map((n) => (
              <li key={n.path}>
                <a href={href(n.path)} aria-current={current(n.path) ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <AlertCount />
          <LiveIndicator />
          <span className="user" title={user.email}>
            {user.email}
          </span>
          <span className="role">({user.role})</span>
          <a className="small" href={href('/account/two-factor')} aria-current={loc.path === '/account/two-factor' ? 'page' : undefined}>
            Two-factor
          </a>
          <button
            type="button"
            className="secondary small"
            onClick={() => {
              // A deliberate sign-out starts the next session on the fleet page; an expired one
              // keeps the address so signing in again returns to the same page.
              navigate('/', undefined, { replace: true });
              void signOut();
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </div>
  );
}

export function App() {
  const { session } = useSession();
  const loc = useLocation();
  // Back from the single sign-on provider: its one-time code becomes a session.
  if (loc.path === '/sso') return <SsoReturn code={loc.query.get('code') ?? ''} />;
  if (!session) return <LoginPage />;
  return (
    <LiveProvider>
      <Shell loc={loc} />
    </LiveProvider>
  );
}
