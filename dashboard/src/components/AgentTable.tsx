// The agents table: sortable headers (buttons, with aria-sort), optional row selection.
import type { Agent } from '../api';
import { nextSort, type AgentSortKey, type SortDir } from '../lib/agents';
import { formatDateTime, formatOsVersion, formatRelative } from '../lib/format';
import { href } from '../lib/router';
import { useNow } from '../hooks';
import { StatusBadge } from './ui';
import { SeverityBadge } from './ScopePicker';

const COLUMNS: { key: AgentSortKey; label: string }[] = [
  { key: 'hostname', label: 'Hostname' },
  { key: 'status', label: 'Status' },
  { key: 'client', label: 'Client' },
  { key: 'site', label: 'Site' },
  { key: 'os', label: 'OS' },
  { key: 'version', label: 'Agent version' },
  { key: 'last_seen', label: 'Last seen' },
];

export function AgentTable({
  agents,
  sort,
  onSort,
  selected,
  onSelect,
  caption,
}: {
  agents: Agent[];
  sort: { key: AgentSortKey; dir: SortDir };
  onSort: (s: { key: AgentSortKey; dir: SortDir }) => void;
  selected?: Set<string>;
  onSelect?: (ids: Set<string>) => void;
  caption: string;
}) {
  const now = useNow();
  const allSelected = !!selected && agents.length > 0 && agents.every((a) => selected.has(a.id));
  const toggle = (id: string) => {
    if (!selected || !onSelect) return;
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    onSelect(next);
  };
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {onSelect ? (
              <th scope="col" className="narrow">
                <input
                  type="checkbox"
                  aria-label="Select all agents shown"
                  checked={allSelected}
                  onChange={() => onSelect(allSelected ? new Set() : new Set(agents.map((a) => a.id)))}
                />
              </th>
            ) : null}
            {COLUMNS.map((c) => (
              <th key={c.key} scope="col" aria-sort={sort.key === c.key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : undefined}>
                <button type="button" className="sort" onClick={() => onSort(nextSort(sort, c.key))}>
                  {c.label}
                  <span aria-hidden="true">{sort.key === c.key ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {agents.map((a) => (
            <tr key={a.id} data-agent-id={a.id}>
              {onSelect ? (
                <td className="narrow">
                  <input type="checkbox" aria-label={`Select ${a.hostname}`} checked={selected?.has(a.id) ?? false} onChange={() => toggle(a.id)} />
                </td>
              ) : null}
              <td>
                <a href={href(`/agents/${a.id}`)}>{a.hostname}</a>
                {a.approval === 'pending' ? (
                  <>
                    {' '}
                    <span className="badge badge-pending">waiting for approval</span>
                  </>
                ) : null}
              </td>
              <td>
                <StatusBadge status={a.status} />
                {a.alert_severity ? (
                  <>
                    {' '}
                    <a href={href('/alerts', { agent_id: a.id })} title="Unresolved alerts" data-testid="agent-alert">
                      <SeverityBadge severity={a.alert_severity} />
                    </a>
                  </>
                ) : null}
              </td>
              <td>{a.client_name ?? <span className="muted">none</span>}</td>
              <td>{a.site_name ?? <span className="muted">none</span>}</td>
              <td>
                {formatOsVersion(a.os_type, a.os_version)}
              </td>
              <td>{a.version}</td>
              <td title={formatDateTime(a.last_seen)}>{a.online ? 'now' : formatRelative(a.last_seen, now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
