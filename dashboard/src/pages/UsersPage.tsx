import { useState, type FormEvent } from 'react';
import type { Role, User } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { formatDateTime } from '../lib/format';
import { ConfirmButton, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';

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
        <Table caption="Users" columns={['Email', 'Role', 'Two-factor', 'Created', 'Actions']}>
              {users.data.map((u) => (
                <tr key={u.id}>
                  <td>{u.email}</td>
                  <td>{u.role}</td>
                  <td>
                    {u.two_factor ? 'on' : 'off'}
                    {u.two_factor && u.id !== me.id ? (
                      <>
                        {' '}
                        <ConfirmButton
                          label="Reset"
                          title={`Turn off two-factor sign-in for ${u.email}?`}
                          message={<p>Use this when {u.email} lost both the authenticator app and the recovery codes. They sign in with the password alone until they set it up again.</p>}
                          confirmLabel="Turn it off"
                          onConfirm={async () => {
                            await api.resetUserTwoFactor(u.id);
                            users.reload();
                          }}
                        />
                      </>
                    ) : null}
                  </td>
                  <td>{formatDateTime(u.created_at)}</td>
                  <td>
                    {u.id === me.id ? (
                      <span className="muted">you</span>
                    ) : (
                      <ConfirmButton
                        label="Delete"
                        danger
                        title={`Delete user ${u.email}?`}
                        message={<p>{u.email} can no longer sign in.</p>}
                        confirmLabel="Delete user"
                        onConfirm={async () => {
                          await api.deleteUser(u.id);
                          users.reload();
                        }}
                      />
                    )}
                  </td>
                </tr>
              ))}
        </Table>
      ) : null}
    </>
  );
}
