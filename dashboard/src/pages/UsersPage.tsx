import { useState, type FormEvent } from 'react';
import type { Role, User } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { formatDateTime } from '../lib/format';
import { ConfirmButton, Dialog, ErrorMessage, Field, Loading, PageHeader, Table } from '../components/ui';
import type { ApiClient } from '../api';

const ROLES: { value: Role; text: string }[] = [
  { value: 'viewer', text: 'Viewer: sees everything, changes nothing' },
  { value: 'technician', text: 'Technician: manages agents, runs commands' },
  { value: 'admin', text: 'Administrator: also manages users' },
];

export function UsersPage() {
  const { api, user: me } = useApi();
  const isAdmin = me.role === 'admin';
  const users = useAsync<User[]>(() => (isAdmin ? api.listUsers() : Promise.resolve([])), [api, isAdmin]);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('technician');
  const create = useAction(async () => {
    await api.createUser({ email: email.trim(), password, role });
    setEmail('');
    setPassword('');
    users.reload();
  });

  if (!isAdmin) {
    return (
      <>
        <PageHeader title="Users" />
        <p className="notice">Only administrators can manage users.</p>
      </>
    );
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    await create.run();
  }

  return (
    <>
      <PageHeader title="Users" />
      <RequireTwoFactor />
      <form className="inline-form" onSubmit={submit} aria-label="New user">
        <span className="form-title">New user</span>
        <div className="field">
          <label htmlFor="u-email">Email</label>
          <input id="u-email" type="email" required autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="u-password">Password</label>
          <input id="u-password" type="password" required minLength={8} autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="u-role">Role</label>
          <select id="u-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.text}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" className="primary" disabled={create.busy}>
          {create.busy ? 'Creating…' : 'Create user'}
        </button>
        <ErrorMessage error={create.error} />
      </form>
      <ErrorMessage error={users.error} prefix="Users could not be loaded" />
      {users.loading && !users.data ? <Loading what="Loading users" /> : null}
      {users.data && users.data.length > 0 ? (
        <Table caption="Users" columns={['Email', 'Role', 'Status', 'Two-factor', 'Created', 'Actions']}>
          {users.data.map((u) => (
            <UserRow key={u.id} api={api} user={u} isMe={u.id === me.id} onChanged={users.reload} />
          ))}
        </Table>
      ) : null}
    </>
  );
}

/** One user: role, status and the admin's actions. Every change signs the user out everywhere. */
function UserRow({ api, user: u, isMe, onChanged }: { api: ApiClient; user: User; isMe: boolean; onChanged: () => void }) {
  const [resetting, setResetting] = useState(false);
  const [newPassword, setNewPassword] = useState('');
  const setRole = useAction(async (role: Role) => {
    await api.updateUser(u.id, { role });
    onChanged();
  });
  const reset = useAction(async () => {
    await api.updateUser(u.id, { password: newPassword });
    setNewPassword('');
    setResetting(false);
  });
  return (
    <tr data-user-email={u.email}>
      <td>{u.email}</td>
      <td>
        {isMe ? (
          u.role
        ) : (
          <select aria-label={`Role of ${u.email}`} value={u.role} disabled={setRole.busy} onChange={(e) => void setRole.run(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.value}
              </option>
            ))}
          </select>
        )}
        <ErrorMessage error={setRole.error} />
      </td>
      <td>{u.disabled ? 'Disabled' : 'Active'}</td>
      <td>
        {u.two_factor ? 'on' : 'off'}
        {u.two_factor && !isMe ? (
          <>
            {' '}
            <ConfirmButton
              label="Reset"
              title={`Turn off two-factor sign-in for ${u.email}?`}
              message={<p>Use this when {u.email} lost both the authenticator app and the recovery codes. They sign in with the password alone until they set it up again.</p>}
              confirmLabel="Turn it off"
              onConfirm={async () => {
                await api.resetUserTwoFactor(u.id);
                onChanged();
              }}
            />
          </>
        ) : null}
      </td>
      <td>{formatDateTime(u.created_at)}</td>
      <td className="actions">
        <button type="button" className="secondary small" onClick={() => setResetting(true)}>
          Reset password
        </button>
        {/* Mounted only while open: its title would otherwise match the new-user form's labels. */}
        {resetting ? (
          <Dialog open title={`New password for ${u.email}`} onClose={() => setResetting(false)}>
            <form
              onSubmit={(e) => {
                e.preventDefault();
                void reset.run();
              }}
            >
              <Field label="New password" hint="At least 8 characters. The user is signed out everywhere.">
                {(id) => <input id={id} type="password" required minLength={8} autoComplete="new-password" value={newPassword} onChange={(e) => setNewPassword(e.target.value)} />}
              </Field>
              <ErrorMessage error={reset.error} />
              <div className="dialog-actions">
                <button type="button" className="secondary" onClick={() => setResetting(false)}>
                  Cancel
                </button>
                <button type="submit" className="primary" disabled={reset.busy}>
                  {reset.busy ? 'Saving…' : 'Set password'}
                </button>
              </div>
            </form>
          </Dialog>
        ) : null}
        {isMe ? (
          <span className="muted"> you</span>
        ) : (
          <>
            <ConfirmButton
              label={u.disabled ? 'Enable' : 'Disable'}
              title={u.disabled ? `Enable ${u.email}?` : `Disable ${u.email}?`}
              message={<p>{u.disabled ? `${u.email} can sign in again.` : `${u.email} is signed out at once and cannot sign in until enabled.`}</p>}
              confirmLabel={u.disabled ? 'Enable user' : 'Disable user'}
              onConfirm={async () => {
                await api.updateUser(u.id, { disabled: !u.disabled });
                onChanged();
              }}
            />
            <ConfirmButton
              label="Delete"
              danger
              title={`Delete user ${u.email}?`}
              message={<p>{u.email} can no longer sign in.</p>}
              confirmLabel="Delete user"
              onConfirm={async () => {
                await api.deleteUser(u.id);
                onChanged();
              }}
            />
          </>
        )}
      </td>
    </tr>
  );
}

/** The administrators' setting that every user must sign in with a second factor. */
function RequireTwoFactor() {
  const { api, user: me } = useApi();
  const settings = useAsync(() => api.serverSettings(), [api]);
  const change = useAction(async (on: boolean) => {
    const next = await api.updateServerSettings({ require_two_factor: on });
    settings.setData(() => next);
  });
  const s = settings.data;
  if (!s) return <ErrorMessage error={settings.error} prefix="Settings could not be loaded" />;
  const byConfig = s.require_two_factor_by_config;
  return (
    <section className="card" aria-label="Two-factor sign-in for everyone">
      <label className="checkbox">
        <input
          type="checkbox"
          checked={s.require_two_factor || byConfig}
          disabled={byConfig || change.busy || (!s.require_two_factor && !me.two_factor)}
          onChange={(e) => change.run(e.target.checked)}
        />{' '}
        Require two-factor sign-in for every user
      </label>
      <p className="muted small">
        {byConfig
          ? 'The server configuration requires it (require_two_factor), so it cannot be turned off here.'
          : !me.two_factor && !s.require_two_factor
            ? 'Set up your own two-factor sign-in first (Two-factor, at the top): requiring it without it would lock you out.'
            : 'Users without it can reach only its setup until they have set it up.'}
      </p>
      <ErrorMessage error={change.error} />
    </section>
  );
}
