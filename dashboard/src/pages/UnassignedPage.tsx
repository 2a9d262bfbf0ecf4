import { useState } from 'react';
import type { Agent, Site } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { formatDateTime, formatOsVersion } from '../lib/format';
import { href } from '../lib/router';
import { Empty, ErrorMessage, Loading, PageHeader, StatusBadge, Table } from '../components/ui';

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

export function UnassignedPage() {
  const { api } = useApi();
  const agents = useAsync<Agent[]>(() => api.unassignedAgents(), [api]);
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  useLiveEvents((e) => {
    if (e.type === 'agent_status') agents.reload();
  });
  return (
    <>
      <PageHeader title="Unassigned agents" />
      <p className="muted">Agents registered without a site. Move each to the site it belongs to.</p>
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
