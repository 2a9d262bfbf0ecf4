// The agent page's alert and policy sections: its unresolved alerts (live), and its effective
// policy with where each setting came from and whether the agent applied it.
import { useRef } from 'react';
import type { Alert, EffectivePolicy } from '../api';
import { useApi } from '../session';
import { useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { AlertTable } from '../pages/AlertsPage';
import { Empty, ErrorMessage, StatusBadge, Table } from './ui';
import { useScopeNames } from './ScopePicker';
import { formatDateTime } from '../lib/format';
import { href } from '../lib/router';
import { scopeLabel } from '../lib/scope';

export function AgentAlerts({ agentId, canAct }: { agentId: string; canAct: boolean }) {
  const { api } = useApi();
  const open = useAsync<Alert[]>(() => api.listAlerts({ agent_id: agentId, limit: 50 }), [api, agentId]);
  const timer = useRef<number | undefined>(undefined);
  useLiveEvents((e) => {
    if (e.type !== 'alert' || e.data.agent_id !== agentId) return;
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => open.reload(), 300);
  });
  const unresolved = (open.data ?? []).filter((a) => a.status !== 'resolved');
  return (
    <section aria-labelledby="alerts-title">
      <div className="section-head">
        <h2 id="alerts-title">Alerts</h2>
        <a href={href('/alerts', { agent_id: agentId })}>All alerts of this agent</a>
      </div>
      <ErrorMessage error={open.error} prefix="Alerts could not be loaded" />
      {open.data && unresolved.length === 0 ? <Empty>No unresolved alert.</Empty> : null}
      {unresolved.length ? <AlertTable alerts={unresolved} canAct={canAct} onChanged={() => open.reload()} /> : null}
    </section>
  );
}

export function EffectivePolicyView({ agentId }: { agentId: string }) {
  const { api } = useApi();
  const names = useScopeNames();
  const policy = useAsync<EffectivePolicy>(() => api.agentPolicy(agentId), [api, agentId]);
  const p = policy.data;
  const entries = p ? Object.entries(p.settings as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined) : [];
  return (
    <section aria-labelledby="policy-title">
      <div className="section-head">
        <h2 id="policy-title">Effective policy</h2>
        <a href={href('/policies')}>Policies</a>
      </div>
      <ErrorMessage error={policy.error} prefix="The policy could not be loaded" />
      {p ? (
        <p data-testid="policy-status">
          <StatusBadge status={p.status} /> revision <code>{p.revision.slice(0, 12)}</code>
          {p.status === 'refused' && p.error ? <strong> refused by the agent: {p.error}</strong> : null}
          {p.reported_at ? <span className="muted"> (agent answered {formatDateTime(p.reported_at)})</span> : null}
        </p>
      ) : null}
      {p && entries.length === 0 ? <Empty>No policy applies: the agent runs with its agent.toml.</Empty> : null}
      {entries.length ? (
        <Table caption="Effective policy" columns={['Setting', 'Value', 'From']}>
          {entries.map(([key, value]) => {
            const src = p?.sources[key];
            return (
              <tr key={key} data-setting={key}>
                <td>{key}</td>
                <td>
                  <code>{JSON.stringify(value)}</code>
                </td>
                <td>{src ? `${src.policy_name} (v${src.policy_version}) on ${scopeLabel(src.scope, names)}` : 'agent.toml'}</td>
              </tr>
            );
          })}
        </Table>
      ) : null}
    </section>
  );
}
