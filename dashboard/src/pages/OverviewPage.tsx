import { useMemo, useState } from 'react';
import type { AgentStats, Client, MetricsSummary, Site } from '../api';
import { useApi } from '../session';
import { useAsync, useInterval } from '../hooks';
import { useLiveEvents } from '../live';
import { applyAgentStatus, countByOs, EMPTY_FILTERS, filterAgents, sortAgents, type AgentFilters, type AgentSortKey, type SortDir } from '../lib/agents';
import { formatOs, formatPercent } from '../lib/format';
import { href } from '../lib/router';
import { AgentTable } from '../components/AgentTable';
import { PendingAgents } from '../components/PendingAgents';
import { Empty, ErrorMessage, Loading, PageHeader } from '../components/ui';

function Stat({ label, value, tone }: { label: string; value: number | string; tone?: string }) {
  return (
    <div className={`stat ${tone ?? ''}`}>
      <span className="stat-value">{value}</span>
      <span className="stat-label">{label}</span>
    </div>
  );
}

export function OverviewPage() {
  const { api, user } = useApi();
  const agents = useAsync(() => api.listAgents(), [api]);
  const stats = useAsync<AgentStats>(() => api.agentStats(), [api]);
  const summary = useAsync<MetricsSummary>(() => api.metricsSummary(), [api]);
  const clients = useAsync<Client[]>(() => api.listClients(), [api]);
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  const [filters, setFilters] = useState<AgentFilters>(EMPTY_FILTERS);
  const [sort, setSort] = useState<{ key: AgentSortKey; dir: SortDir }>({ key: 'hostname', dir: 'asc' });
  const [selected, setSelected] = useState<Set<string>>(new Set());

  // Counts and fleet averages move with every metrics report, which has no event of its own.
  useInterval(() => {
    stats.reload();
    summary.reload();
  }, 60_000);

  useLiveEvents((e) => {
    if (e.type !== 'agent_status') return;
    const known = agents.data?.some((a) => a.id === e.data.agent_id);
    if (known) agents.setData((list) => list && applyAgentStatus(list, e.data.agent_id, e.data.online));
    else agents.reload(); // a newly enrolled agent
    stats.reload();
    summary.reload();
  });

  // Records waiting for approval are listed apart: they are not (yet) part of the fleet.
  const fleet = useMemo(() => agents.data?.filter((a) => a.approval !== 'pending'), [agents.data]);
  const pending = useMemo(() => agents.data?.filter((a) => a.approval === 'pending') ?? [], [agents.data]);
  const shown = useMemo(() => sortAgents(filterAgents(fleet ?? [], filters), sort.key, sort.dir), [fleet, filters, sort]);
  const siteOptions = (sites.data ?? []).filter((s) => !filters.clientId || s.client_id === filters.clientId);
  const byOs = stats.data?.by_os ?? countByOs(agents.data ?? []);
  const set = (patch: Partial<AgentFilters>) => setFilters((f) => ({ ...f, ...patch }));
  const selectedShown = shown.filter((a) => selected.has(a.id));

  return (
    <>
      <PageHeader title="Fleet overview">
        <a className="button" href={href('/console', { agents: selectedShown.map((a) => a.id).join(',') || undefined })} aria-disabled={selectedShown.length === 0}>
          Run command on {selectedShown.length || 'selected'} agent{selectedShown.length === 1 ? '' : 's'}
        </a>
        {user.role !== 'viewer' ? (
          <a className="button secondary" href={href('/run', { agents: selectedShown.map((a) => a.id).join(',') || undefined })} aria-disabled={selectedShown.length === 0}>
            Run script on selected
          </a>
        ) : null}
      </PageHeader>

      <section aria-label="Fleet counts" className="stats">
        <ErrorMessage error={stats.error} prefix="Counts could not be loaded" />
        <Stat label="Agents" value={stats.data?.total ?? agents.data?.length ?? '…'} />
        <Stat label="Online" value={stats.data?.online ?? '…'} tone="tone-online" />
        <Stat label="Offline" value={stats.data?.offline ?? '…'} tone="tone-offline" />
        {Object.entries(byOs)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([os, n]) => (
            <Stat key={os} label={formatOs(os)} value={n} />
          ))}
        {stats.data?.unassigned ? (
          <a className="stat stat-link" href={href('/unassigned')}>
            <span className="stat-value">{stats.data.unassigned}</span>
            <span className="stat-label">Unassigned</span>
          </a>
        ) : null}
        {summary.data ? (
          <>
            <Stat label="Average CPU" value={formatPercent(summary.data.avg_cpu_percent)} />
            <Stat label="Average memory" value={formatPercent(summary.data.avg_memory_percent)} />
          </>
        ) : null}
      </section>
      {stats.data?.by_version && Object.keys(stats.data.by_version).length > 0 ? (
        <p className="muted small-text">
          Agent versions:{' '}
          {Object.entries(stats.data.by_version)
            .sort(([a], [b]) => b.localeCompare(a, undefined, { numeric: true }))
            .map(([v, n]) => `${v || 'unknown'} (${n})`)
            .join(', ')}
        </p>
      ) : null}
      <ErrorMessage error={summary.error} prefix="Fleet metrics could not be loaded" />

      <PendingAgents
        pending={pending}
        onChange={() => {
          agents.reload();
          stats.reload();
        }}
      />

      <section aria-labelledby="agents-title">
        <h2 id="agents-title">Agents</h2>
        <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
          <div className="field">
            <label htmlFor="f-search">Search</label>
            <input id="f-search" type="search" placeholder="Hostname, client, site, OS…" value={filters.search} onChange={(e) => set({ search: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="f-client">Client</label>
            <select id="f-client" value={filters.clientId} onChange={(e) => set({ clientId: e.target.value, siteId: '' })}>
              <option value="">All clients</option>
              {(clients.data ?? []).map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-site">Site</label>
            <select id="f-site" value={filters.siteId} onChange={(e) => set({ siteId: e.target.value })}>
              <option value="">All sites</option>
              {siteOptions.map((s) => (
                <option key={s.id} value={s.id}>
                  {filters.clientId ? s.name : `${s.client_name} / ${s.name}`}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-status">Status</label>
            <select id="f-status" value={filters.status} onChange={(e) => set({ status: e.target.value as AgentFilters['status'] })}>
              <option value="">Any status</option>
              <option value="online">Online</option>
              <option value="offline">Offline</option>
            </select>
          </div>
          <button type="button" className="secondary" onClick={() => setFilters(EMPTY_FILTERS)}>
            Clear filters
          </button>
        </form>
        <ErrorMessage error={clients.error} prefix="Clients could not be loaded" />
        <ErrorMessage error={sites.error} prefix="Sites could not be loaded" />
        <ErrorMessage error={agents.error} prefix="Agents could not be loaded" />
        {agents.loading && !agents.data ? <Loading what="Loading agents" /> : null}
        {fleet && fleet.length === 0 ? (
          <Empty>
            No agents yet. Create a site under <a href={href('/clients')}>Clients &amp; sites</a> and install an agent with its site code.
          </Empty>
        ) : null}
        {fleet && fleet.length > 0 ? (
          <>
            <p className="muted" role="status">
              Showing {shown.length} of {fleet.length} agents
            </p>
            <AgentTable agents={shown} sort={sort} onSort={setSort} selected={selected} onSelect={setSelected} caption="Agents" />
          </>
        ) : null}
      </section>
    </>
  );
}

