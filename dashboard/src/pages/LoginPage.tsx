import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, type AuthProviders } from '../api';
import { useSession } from '../session';
import { ErrorMessage } from '../components/ui';

export function LoginPage() {
  const { login, notice, api } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  // Shown once the server said this account also needs its second factor.
  const [needsCode, setNeedsCode] = useState(false);
  const [code, setCode] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const [firstAdminHint, setFirstAdminHint] = useState<string | null>(null);
  const [sso, setSso] = useState<AuthProviders['oidc']>(null);

  useEffect(() => {
    document.title = 'Sign in · GuruRMM';
  }, []);

  // A server with no user yet says how to create the first administrator.
  useEffect(() => {
    let current = true;
    api.authStatus().then(
      (s) => current && setFirstAdminHint(s.needs_first_admin ? (s.hint ?? 'gururmm-server user add') : null),
      () => undefined,
    );
    api.authProviders().then(
      (p) => current && setSso(p.oidc ?? null),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [api]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password, needsCode ? code : undefined);
    } catch (err) {
      if (err instanceof ApiError && err.twoFactorRequired && !needsCode) {
        setNeedsCode(true);
      } else {
        setError(err);
      }
      setBusy(false);
    }
  }

  return (
    <main className="login" id="main">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">GuruRMM</h1>
        <p className="muted">Sign in to the dashboard</p>
        {notice ? (
          <p className="notice" role="status">
            {notice}
          </p>
        ) : null}
        {firstAdminHint ? (
          <div className="notice" role="status">
            <p>This server has no user yet. Create the first administrator on the server:</p>
            <code>{firstAdminHint}</code>
          </div>
        ) : null}
        <div className="field">
          <label htmlFor="login-email">Email</label>
          <input id="login-email" type="email" autoComplete="username" required autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="login-password">Password</label>
          <input id="login-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </div>
        {needsCode ? (
          <div className="field">
            <label htmlFor="login-code">Authentication code</label>
            <input
              id="login-code"
              autoComplete="one-time-code"
              inputMode="text"
              required
              autoFocus
              value={code}
              onChange={(e) => setCode(e.target.value)}
              aria-describedby="login-code-help"
            />
            <p id="login-code-help" className="muted small">
              The 6-digit code from your authenticator app, or one of your recovery codes.
            </p>
          </div>
        ) : null}
        <ErrorMessage error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : needsCode ? 'Verify and sign in' : 'Sign in'}
        </button>
        {sso ? (
          <>
            <p className="login-or muted small">or</p>
            {/* A navigation to the provider, not a form post: the CSP's form-action allows it. */}
            <a className="button secondary sso-button" href={sso.login_url}>
              Sign in with {sso.display_name}
            </a>
          </>
        ) : null}
      </form>
    </main>
  );
}

/** The page the single sign-on redirect lands on (`#/sso?code=`): exchanges the code once. */
export function SsoReturn({ code }: { code: string }) {
  const { loginWithSsoCode } = useSession();
  const [error, setError] = useState<unknown>(code ? null : new Error('The sign-in link has no code. Start the sign-in again.'));
  const started = useRef(false);

  useEffect(() => {
    document.title = 'Signing in · GuruRMM';
    // The code works once: never send it twice (React may run effects twice in development).
    if (!code || started.current) return;
    started.current = true;
    loginWithSsoCode(code).catch(setError);
  }, [code, loginWithSsoCode]);

  return (
    <main className="login" id="main">
      <div className="card login-card">
        <h1>GuruRMM</h1>
        {error ? (
          <>
            <ErrorMessage error={error} prefix="Single sign-on failed" />
            <p>
              <a href="#/">Back to the sign-in page</a>
            </p>
          </>
        ) : (
          <p role="status">Signing in…</p>
        )}
      </div>
    </main>
  );
}
