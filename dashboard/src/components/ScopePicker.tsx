// Choosing a scope: the whole fleet, a client, a site or one agent.
import { useMemo } from 'react';
import { useApi } from '../session';
import { useAsync } from '../hooks';
import type { Scope, ScopeKind, Severity } from '../api';
import type { Names } from '../lib/scope';

export function ScopePicker({
  idPrefix,
  value,
  onChange,
  names,
  kinds = ['fleet', 'client', 'site', 'agent'],
}: {
  idPrefix: string;
  value: Scope;
  onChange: (s: Scope) => void;
  names: Names;
  kinds?: ScopeKind[];
}) {
  const options =
    value.kind === 'client'
      ? names.clients.map((c) => ({ id: c.id, label: c.name }))
      : value.kind === 'site'
        ? names.sites.map((s) => ({ id: s.id, label: `${s.client_name} / ${s.name}` }))
        : value.kind === 'agent'
          ? names.agents.map((a) => ({ id: a.id, label: a.hostname }))
          : [];
  return (
    <>
      <div className="field">
        <label htmlFor={`${idPrefix}-scope-kind`}>Applies to</label>
        <select
          id={`${idPrefix}-scope-kind`}
          value={value.kind}
          onChange={(e) => {
            const kind = e.target.value as ScopeKind;
            onChange(kind === 'fleet' ? { kind } : { kind, id: '' });
          }}
        >
          {kinds.map((k) => (
            <option key={k} value={k}>
              {k === 'fleet' ? 'whole fleet' : `a ${k}`}
            </option>
          ))}
        </select>
      </div>
      {value.kind !== 'fleet' ? (
        <div className="field">
          <label htmlFor={`${idPrefix}-scope-id`}>Which {value.kind}</label>
          <select id={`${idPrefix}-scope-id`} value={value.id ?? ''} onChange={(e) => onChange({ kind: value.kind, id: e.target.value })}>
            <option value="">choose…</option>
            {options.map((o) => (
              <option key={o.id} value={o.id}>
                {o.label}
              </option>
            ))}
          </select>
        </div>
      ) : null}
    </>
  );
}

export function SeverityBadge({ severity }: { severity: Severity }) {
  return <span className={`badge badge-severity-${severity}`}>{severity}</span>;
}

export const SEVERITIES: Severity[] = ['info', 'warning', 'critical'];

/** The clients, sites and agents a scope may name, for pickers and labels. */
export function useScopeNames(): Names {
  const { api } = useApi();
  const clients = useAsync(() => api.listClients(), [api]);
  const sites = useAsync(() => api.listSites(), [api]);
  const agents = useAsync(() => api.listAgents(), [api]);
  return useMemo(
    () => ({ clients: clients.data ?? [], sites: sites.data ?? [], agents: agents.data ?? [] }),
    [clients.data, sites.data, agents.data],
  );
}
