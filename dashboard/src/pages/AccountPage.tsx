// The signed-in user's own account: where they are signed in (each session can be ended, which
// signs that browser out at once) and their password (changing it signs out everywhere else).
import { useState, type FormEvent } from 'react';
import type { AuthSession } from '../api';
import { useApi, useSession } from '../session';
import { useAction, useAsync } from '../hooks';
import { formatDateTime } from '../lib/format';
import { ConfirmButton, ErrorMessage, Field, Loading, PageHeader, Table } from '../components/ui';

export function AccountPage() {
  const { api, user } = useApi();
  const { signOut, adopt } = useSession();
  const sessions = useAsync<AuthSession[]>(() => api.listSessions(), [api]);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [changed, setChanged] = useState(false);
  const change = useAction(async () => {
    const fresh = await api.changePassword({ current_password: current, new_password: next });
    setCurrent('');
    setNext('');
    setChanged(true);
    adopt(fresh);
  });

  async function submit(e: FormEvent) {
    e.preventDefault();
    setChanged(false);
    await change.run();
  }

  return (
    <>
      <PageHeader title="Your account" />
      <p>
        Signed in as <strong>{user.email}</strong> ({user.role}).
      </p>
      <h2>Where you are signed in</h2>
      <ErrorMessage error={sessions.error} prefix="Sessions could not be loaded" />
      {sessions.loading && !sessions.data ? <Loading what="Loading sessions" /> : null}
      {sessions.data ? (
        <Table caption="Your sessions" columns={['Browser or client', 'Address', 'Signed in', 'Last used', 'Actions']}>
          {sessions.data.map((s) => (
            <tr key={s.id} data-session-id={s.id}>
              <td>
                {s.user_agent ?? 'unknown'}
                {s.current ? <span className="muted"> (this browser)</span> : null}
              </td>
              <td>{s.source_address ?? ''}</td>
              <td>{formatDateTime(s.created_at)}</td>
              <td>{formatDateTime(s.last_used_at)}</td>
              <td>
                {s.current ? (
                  <button type="button" className="secondary small" onClick={() => void signOut()}>
                    End this session
                  </button>
                ) : (
                  <ConfirmButton
                    label="End session"
                    title="End this session?"
                    message={<p>That browser is signed out at once.</p>}
                    confirmLabel="Sign it out"
                    onConfirm={async () => {
                      await api.endSession(s.id);
                      sessions.reload();
                    }}
                  />
                )}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      <h2>Change your password</h2>
      <form className="inline-form" onSubmit={submit} aria-label="Change password">
        <Field label="Current password">
          {(id) => <input id={id} type="password" required autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />}
        </Field>
        <Field label="New password" hint="At least 8 characters. Every other session is signed out.">
          {(id) => <input id={id} type="password" required minLength={8} autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} />}
        </Field>
        <button type="submit" className="primary" disabled={change.busy}>
          {change.busy ? 'Changing…' : 'Change password'}
        </button>
        <ErrorMessage error={change.error} />
        {changed ? (
          <p className="notice" role="status">
            Password changed; every other session was signed out.
          </p>
        ) : null}
      </form>
    </>
  );
}
