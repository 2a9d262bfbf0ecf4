import { useState, type FormEvent } from 'react';
import type { Agent, Site } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { formatDateTime, formatOsVersion } from '../lib/format';
import { href } from '../lib/router';
import { CopyButton, Empty, ErrorMessage, Loading, PageHeader, StatusBadge, Table } from '../components/ui';

function MoveRow({ agent, sites, onMoved }: { agent: Agent; sites: Site[]; onMoved: () => void }) {
  const { api, user } = useApi();
  const [siteId, setSiteId] = useState('');
  const { run, busy, error } = useAction(async () => {
    await api.moveAgent(agent.id, siteId);
    onMoved();
  });
  const selectId = `move-${agent.id}`;
  return (
    <tr>
      <td>
        <a href={href(`/agents/${agent.id}`)}>{agent.hostname}</a>
      </td>
      <td>
        <StatusBadge status={agent.status} />
      </td>
      <td>
        {formatOsVersion(agent.os_type, agent.os_version)}
      </td>
      <td>{formatDateTime(agent.created_at)}</td>
      <td>
        {user.role === 'viewer' ? (
          <span className="muted">viewers cannot move agents</span>
        ) : (
          <div className="inline-form tight">
            <label htmlFor={selectId} className="visually-hidden">
              Site for {agent.hostname}
            </label>
            <select id={selectId} value={siteId} onChange={(e) => setSiteId(e.target.value)}>
              <option value="">Choose a site</option>
              {sites.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.client_name} / {s.name}
                </option>
              ))}
            </select>
            <button type="button" className="primary small" disabled={!siteId || busy} onClick={() => void run()}>
              {busy ? 'Moving…' : 'Move'}
            </button>
            <ErrorMessage error={error} />
          </div>
        )}
      </td>
    </tr>
  );
}

/** Registers an agent by hand (for machines set up with a grmm_ key instead of a site code). */
function RegisterAgent({ sites, onRegistered }: { sites: Site[]; onRegistered: () => void }) {
  const { api } = useApi();
  const [hostname, setHostname] = useState('');
  const [siteId, setSiteId] = useState('');
  const [issued, setIssued] = useState<{ hostname: string; key: string } | null>(null);
  const { run, busy, error } = useAction(async () => {
    const res = await api.registerAgent({ hostname: hostname.trim(), site_id: siteId || undefined });
    setIssued({ hostname: res.agent.hostname, key: res.api_key });
    setHostname('');
    onRegistered();
  });
  async function submit(e: FormEvent) {
    e.preventDefault();
    await run();
  }
  return (
    <section aria-labelledby="register-title">
      <h2 id="register-title">Register an agent by hand</h2>
      <form className="inline-form" onSubmit={submit}>
        <div className="field">
          <label htmlFor="reg-host">Hostname</label>
          <input id="reg-host" required maxLength={255} value={hostname} onChange={(e) => setHostname(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="reg-site">Site (optional)</label>
          <select id="reg-site" value={siteId} onChange={(e) => setSiteId(e.target.value)}>
            <option value="">No site: stays unassigned</option>
            {sites.map((s) => (
              <option key={s.id} value={s.id}>
                {s.client_name} / {s.name}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Registering…' : 'Register agent'}
        </button>
        <ErrorMessage error={error} />
      </form>
      {issued ? (
        <div className="notice" role="status">
          <p>
            Agent key for <strong>{issued.hostname}</strong>. It is shown only now: put it in that machine's agent.toml as <code>api_key</code>.
          </p>
          <div className="site-code-row">
            <code data-testid="issued-key">{issued.key}</code>
            <CopyButton text={issued.key} label="Copy agent key" />
            <button type="button" className="secondary small" onClick={() => setIssued(null)}>
              I have stored it
            </button>
          </div>
        </div>
      ) : null}
    </section>
  );
}

export function UnassignedPage() {
  const { api, user } = useApi();
  const agents = useAsync<Agent[]>(() => api.unassignedAgents(), [api]);
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  useLiveEvents((e) => {
    if (e.type === 'agent_status') agents.reload();
  });
  return (
    <>
      <PageHeader title="Unassigned agents" />
      <p className="muted">Agents registered without a site. Move each to the site it belongs to.</p>
      {user.role !== 'viewer' ? <RegisterAgent sites={sites.data ?? []} onRegistered={agents.reload} /> : null}
      <h2>Waiting for a site</h2>
      <ErrorMessage error={agents.error} prefix="Unassigned agents could not be loaded" />
      <ErrorMessage error={sites.error} prefix="Sites could not be loaded" />
      {agents.loading && !agents.data ? <Loading what="Loading agents" /> : null}
      {agents.data?.length === 0 ? <Empty>Every agent belongs to a site.</Empty> : null}
      {agents.data && agents.data.length > 0 ? (
        <Table caption="Unassigned agents" columns={['Hostname', 'Status', 'OS', 'Registered', 'Move to']}>
              {agents.data.map((a) => (
                <MoveRow key={a.id} agent={a} sites={sites.data ?? []} onMoved={agents.reload} />
              ))}
        </Table>
      ) : null}
    </>
  );
}
