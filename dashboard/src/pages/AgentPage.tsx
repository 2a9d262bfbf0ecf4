import { useMemo, useState } from 'react';
import { AgentAlerts, EffectivePolicyView } from '../components/AgentAlertsAndPolicy';
import type { Agent, AgentState, AgentUpdate, CommandRecord, MetricsHistory, Site, WatchdogEvent } from '../api';
import { useApi } from '../session';
import { useAction, useAsync, useInterval, useNow, type AsyncState } from '../hooks';
import { updateStateLabel } from '../lib/releases';
import { useLiveEvents } from '../live';
import { counterRates, RANGES, type Point, type RangeKey } from '../lib/chart';
import { formatBytes, formatDateTime, formatOsVersion, formatPercent, formatRate, formatRelative, humanize, percentOf } from '../lib/format';
import { href, navigate } from '../lib/router';
import { applyAgentStatus } from '../lib/agents';
import { LineChart } from '../components/LineChart';
import { CommandTable } from '../components/CommandTable';
import { ConfirmButton, Empty, ErrorMessage, Loading, PageHeader, StatusBadge, Table } from '../components/ui';
import { ApprovalButtons } from '../components/PendingAgents';

/** A pending record's own banner, or, on an agent's page, the machines that claim to be it. */
function Claims({ agent, onChange }: { agent: Agent; onChange: (approved: Agent | null) => void }) {
  const { api } = useApi();
  const pending = useAsync<Agent[]>(() => api.listAgents({ approval: 'pending' }), [api, agent.id]);
  if (agent.approval === 'pending') {
    return (
      <section className="card warning" aria-labelledby="approval-title" data-testid="approval-banner">
        <h2 id="approval-title">Waiting for approval</h2>
        <p>
          {agent.claims_agent_id ? (
            <>
              This machine claims to be <a href={href(`/agents/${agent.claims_agent_id}`)}>an existing agent</a> (it enrolled with that agent&apos;s device id).
              Approving it gives it that agent&apos;s place and history; the old key stops working.
            </>
          ) : (
            <>This machine enrolled at a site that requires approval.</>
          )}{' '}
          It receives no commands until it is approved.
        </p>
        <ApprovalButtons pending={agent} claimed={agent.claims_agent_id ?? undefined} onDone={onChange} />
      </section>
    );
  }
  const claiming = (pending.data ?? []).filter((p) => p.claims_agent_id === agent.id);
  if (claiming.length === 0) return null;
  return (
    <section className="card warning" aria-labelledby="claims-title" data-testid="claims-banner">
      <h2 id="claims-title">A machine claims to be this agent</h2>
      {claiming.map((p) => (
        <p key={p.id}>
          <a href={href(`/agents/${p.id}`)}>{p.hostname}</a> ({formatOsVersion(p.os_type, p.os_version)}, enrolled {formatDateTime(p.created_at)}
          {p.site_name ? ` at ${p.client_name} / ${p.site_name}` : ''}) used this agent&apos;s device id. Approve it only if you reinstalled or restored this
          agent. <ApprovalButtons
            pending={p}
            claimed={agent.hostname}
            onDone={() => {
              pending.reload();
              onChange(null);
            }}
          />
        </p>
      ))}
    </section>
  );
}

function Info({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div className="info">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function MoveAgent({ agent, onMoved }: { agent: Agent; onMoved: (a: Agent) => void }) {
  const { api } = useApi();
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  const [siteId, setSiteId] = useState('');
  const target = sites.data?.find((s) => s.id === siteId);
  return (
    <div className="inline-form">
      <div className="field">
        <label htmlFor="move-site">Move to site</label>
        <select id="move-site" value={siteId} onChange={(e) => setSiteId(e.target.value)}>
          <option value="">Choose a site</option>
          {(sites.data ?? [])
            .filter((s) => s.id !== agent.site_id)
            .map((s) => (
              <option key={s.id} value={s.id}>
                {s.client_name} / {s.name}
              </option>
            ))}
        </select>
      </div>
      <ConfirmButton
        label="Move"
        disabled={!target}
        title={`Move ${agent.hostname}?`}
        message={<p>Move {agent.hostname} to {target ? `${target.client_name} / ${target.name}` : 'the chosen site'}?</p>}
        confirmLabel="Move agent"
        onConfirm={async () => {
          onMoved(await api.moveAgent(agent.id, siteId));
          setSiteId('');
        }}
      />
      <ErrorMessage error={sites.error} prefix="Sites could not be loaded" />
    </div>
  );
}

function seriesOf(history: MetricsHistory | undefined, pick: (p: MetricsHistory['points'][number]) => number | null): Point[] {
  return (history?.points ?? []).map((p) => ({ t: Date.parse(p.timestamp), v: pick(p) }));
}

function MetricsCharts({ agentId }: { agentId: string }) {
  const { api } = useApi();
  const [range, setRange] = useState<RangeKey>('1h');
  const [to, setTo] = useState(() => Date.now());
  const from = to - RANGES[range];
  const history = useAsync<MetricsHistory>(() => api.agentMetrics(agentId, new Date(from), new Date(to)), [api, agentId, from, to]);
  // Keep the window moving: the short range refreshes each minute, the others every 5 minutes.
  useInterval(() => setTo(Date.now()), range === '1h' ? 60_000 : 300_000);

  const cpu = seriesOf(history.data, (p) => p.cpu_percent);
  const mem = seriesOf(history.data, (p) => percentOf(p.memory_used_bytes, p.memory_total_bytes));
  const disk = seriesOf(history.data, (p) => percentOf(p.disk_used_bytes, p.disk_total_bytes));
  const rx = counterRates(seriesOf(history.data, (p) => p.network_rx_bytes));
  const tx = counterRates(seriesOf(history.data, (p) => p.network_tx_bytes));
  const pct = (v: number) => formatPercent(v, 0);

  return (
    <section aria-labelledby="metrics-title">
      <div className="section-head">
        <h2 id="metrics-title">Metrics</h2>
        <div role="radiogroup" aria-label="Time range" className="segmented">
          {(Object.keys(RANGES) as RangeKey[]).map((r) => (
            <label key={r} className={r === range ? 'active' : ''}>
              <input
                type="radio"
                name="range"
                value={r}
                checked={r === range}
                onChange={() => {
                  setRange(r);
                  setTo(Date.now());
                }}
              />
              {r}
            </label>
          ))}
        </div>
      </div>
      <ErrorMessage error={history.error} prefix="Metrics could not be loaded" />
      {history.loading && !history.data ? <Loading what="Loading metrics" /> : null}
      <div className="charts">
        <LineChart title="CPU" series={[{ label: 'CPU', points: cpu, className: 's1' }]} from={from} to={to} format={pct} fixedMax={100} />
        <LineChart title="Memory" series={[{ label: 'Used', points: mem, className: 's2' }]} from={from} to={to} format={pct} fixedMax={100} />
        <LineChart title="Disk" series={[{ label: 'Used (all disks)', points: disk, className: 's3' }]} from={from} to={to} format={pct} fixedMax={100} />
        <LineChart
          title="Network"
          series={[
            { label: 'Received', points: rx, className: 's1' },
            { label: 'Sent', points: tx, className: 's4' },
          ]}
          from={from}
          to={to}
          format={formatRate}
          binary
        />
      </div>
      {history.data ? <p className="muted small-text">Each point averages {Math.round(history.data.bucket_seconds)} s.</p> : null}
    </section>
  );
}

function CurrentState({ state }: { state: AgentState }) {
  const m = state.metrics;
  return (
    <>
      <section aria-labelledby="now-title">
        <h2 id="now-title">Latest report</h2>
        {m ? (
          <>
            <dl className="info-grid">
              <Info label="Reported">{formatDateTime(m.timestamp)}</Info>
              <Info label="CPU">{formatPercent(m.cpu_percent)}</Info>
              <Info label="Memory">
                {formatBytes(m.memory_used_bytes)} of {formatBytes(m.memory_total_bytes)} ({formatPercent(percentOf(m.memory_used_bytes, m.memory_total_bytes))})
              </Info>
              <Info label="Network total">
                received {formatBytes(m.network?.rx_bytes)}, sent {formatBytes(m.network?.tx_bytes)}
              </Info>
            </dl>
            {m.disks.length ? (
              <Table caption="Disks" columns={['Mount', { label: 'Used', className: 'num' }, { label: 'Total', className: 'num' }, 'Usage']} showCaption>
                    {m.disks.map((d) => {
                      const p = percentOf(d.used_bytes, d.total_bytes) ?? 0;
                      return (
                        <tr key={d.mount}>
                          <td>
                            <code>{d.mount}</code>
                          </td>
                          <td className="num">{formatBytes(d.used_bytes)}</td>
                          <td className="num">{formatBytes(d.total_bytes)}</td>
                          <td>
                            <meter min={0} max={100} low={80} high={90} optimum={0} value={p} aria-label={`${d.mount} usage`} /> {formatPercent(p, 0)}
                          </td>
                        </tr>
                      );
                    })}
              </Table>
            ) : null}
          </>
        ) : (
          <Empty>This agent has not reported metrics yet.</Empty>
        )}
      </section>
      <section aria-labelledby="net-title">
        <h2 id="net-title">Network interfaces</h2>
        {state.network && state.network.interfaces.length ? (
          <Table caption={`Network interfaces, updated ${formatDateTime(state.network.updated_at)}`} columns={['Interface', 'MAC', 'Addresses']}>
                {state.network.interfaces.map((i) => (
                  <tr key={i.name}>
                    <td>{i.name}</td>
                    <td>
                      <code>{i.mac ?? '—'}</code>
                    </td>
                    <td>
                      {i.addresses.length ? (
                        <ul className="plain">
                          {i.addresses.map((a) => (
                            <li key={a}>
                              <code>{a}</code>
                            </li>
                          ))}
                        </ul>
                      ) : (
                        <span className="muted">none</span>
                      )}
                    </td>
                  </tr>
                ))}
          </Table>
        ) : (
          <Empty>No network state reported yet.</Empty>
        )}
      </section>
    </>
  );
}

/** The agent's updates (live): what it was sent, how far it got, why one failed. */
function Updates({ agentId, updates, canAct }: { agentId: string; updates: AsyncState<AgentUpdate[]>; canAct: boolean }) {
  const { api } = useApi();
  const retry = useAction(async () => {
    await api.retryAgentUpdate(agentId);
    updates.reload();
  });
  const last = updates.data?.[0];
  return (
    <section aria-labelledby="updates-title">
      <div className="section-head">
        <h2 id="updates-title">Updates</h2>
        {canAct && last && (last.status === 'failed' || last.status === 'rolled_back') ? (
          <button type="button" className="secondary small" disabled={retry.busy} onClick={() => void retry.run()}>
            Retry update to {last.to_version}
          </button>
        ) : null}
      </div>
      <ErrorMessage error={updates.error} prefix="Updates could not be loaded" />
      <ErrorMessage error={retry.error} prefix="The update could not be retried" />
      {updates.data?.length === 0 ? <Empty>No update was sent to this agent.</Empty> : null}
      {last ? (
        <p data-testid="update-state">
          Latest: {last.from_version ?? '?'} → {last.to_version}, <strong>{updateStateLabel(last.status)}</strong>
          {last.reason ? ` (${last.reason})` : ''}
        </p>
      ) : null}
      {updates.data && updates.data.length > 0 ? (
        <Table caption="Updates" columns={['Started', 'From', 'To', 'State', 'Reason', 'Changed']}>
          {updates.data.map((u) => (
            <tr key={u.id}>
              <td>{formatDateTime(u.created_at)}</td>
              <td>{u.from_version ?? ''}</td>
              <td>
                {u.to_version}
                {u.allow_downgrade ? ' (downgrade)' : ''}
              </td>
              <td>{updateStateLabel(u.status)}</td>
              <td>{u.reason ?? ''}</td>
              <td>{formatDateTime(u.updated_at)}</td>
            </tr>
          ))}
        </Table>
      ) : null}
    </section>
  );
}

export function AgentPage({ id }: { id: string }) {
  const { api, user } = useApi();
  const now = useNow();
  const agent = useAsync<Agent>(() => api.getAgent(id), [api, id]);
  const state = useAsync<AgentState>(() => api.agentState(id), [api, id]);
  const events = useAsync<WatchdogEvent[]>(() => api.watchdogEvents(id), [api, id]);
  const commands = useAsync<CommandRecord[]>(() => api.listCommands({ agent_id: id, limit: 50 }), [api, id]);
  const updates = useAsync<AgentUpdate[]>(() => api.agentUpdates(id), [api, id]);
  useInterval(() => state.reload(), 30_000);

  useLiveEvents((e) => {
    if (e.type === 'agent_status' && e.data.agent_id === id) {
      agent.setData((a) => a && applyAgentStatus([a], id, e.data.online)[0]);
      state.reload();
    }
    if (e.type === 'command_updated' && e.data.agent_id === id) commands.reload();
    if (e.type === 'agent_update' && e.data.agent_id === id) {
      updates.reload();
      agent.reload();
    }
  });

  const sortedEvents = useMemo(() => [...(events.data ?? [])].sort((a, b) => b.timestamp.localeCompare(a.timestamp)), [events.data]);

  if (agent.error && !agent.data) {
    return (
      <>
        <PageHeader title="Agent" />
        <ErrorMessage error={agent.error} prefix="The agent could not be loaded" />
        <a href={href('/')}>Back to the fleet</a>
      </>
    );
  }
  if (!agent.data) return <Loading what="Loading agent" />;
  const a = agent.data;
  const canAct = user.role !== 'viewer';

  return (
    <>
      <PageHeader title={a.hostname}>
        <StatusBadge status={a.status} />
        {canAct ? (
          <a className="button" href={href('/console', { agents: a.id })} aria-disabled={a.approval === 'pending'}>
            Run a command
          </a>
        ) : null}
        {canAct ? (
          <ConfirmButton
            label="Delete agent"
            danger
            title={`Delete ${a.hostname}?`}
            message={<p>The agent's record, metrics and command history are removed. If the machine still runs the agent with a site code or token in its config, it enrolls again as a new agent.</p>}
            confirmLabel="Delete agent"
            onConfirm={async () => {
              await api.deleteAgent(a.id);
              navigate('/');
            }}
          />
        ) : null}
      </PageHeader>

      <Claims
        agent={a}
        onChange={(approved) => {
          if (approved && approved.id !== a.id) navigate(`/agents/${approved.id}`);
          else if (!approved && a.approval === 'pending') navigate('/');
          else agent.reload();
        }}
      />

      <dl className="info-grid card">
        <Info label="Status">{a.online ? 'Online' : `Offline, last seen ${formatRelative(a.last_seen, now)}`}</Info>
        <Info label="Last seen">{formatDateTime(a.last_seen)}</Info>
        <Info label="Operating system">
          {formatOsVersion(a.os_type, a.os_version)}{a.arch ? ` (${a.arch})` : ''}
        </Info>
        <Info label="Agent version">{a.version}</Info>
        <Info label="Client / site">
          {a.site_id ? (
            <a href={href(`/sites/${a.site_id}`)}>
              {a.client_name} / {a.site_name}
            </a>
          ) : (
            <span className="muted">Unassigned</span>
          )}
        </Info>
        <Info label="Device id">
          <code>{a.device_id}</code>
        </Info>
        <Info label="Enrolled">{formatDateTime(a.created_at)}</Info>
      </dl>
      {canAct ? <MoveAgent agent={a} onMoved={(moved) => agent.setData(() => ({ ...a, ...moved }))} /> : null}

      <ErrorMessage error={state.error} prefix="The agent's state could not be loaded" />
      {state.data ? <CurrentState state={state.data} /> : null}

      <MetricsCharts agentId={id} />

      <AgentAlerts agentId={id} canAct={canAct} />

      <EffectivePolicyView agentId={id} />

      <Updates agentId={id} updates={updates} canAct={canAct} />

      <section aria-labelledby="wd-title">
        <h2 id="wd-title">Watchdog events</h2>
        <ErrorMessage error={events.error} prefix="Watchdog events could not be loaded" />
        {events.data?.length === 0 ? <Empty>No watchdog events.</Empty> : null}
        {sortedEvents.length ? (
          <Table caption="Watchdog events" columns={['Time', 'Service', 'Event', 'Message']}>
                {sortedEvents.map((ev) => (
                  <tr key={ev.id}>
                    <td className="nowrap">{formatDateTime(ev.timestamp)}</td>
                    <td>{ev.service}</td>
                    <td>
                      <span className={`badge badge-wd-${ev.event}`}>{humanize(ev.event)}</span>
                    </td>
                    <td>{ev.message}</td>
                  </tr>
                ))}
          </Table>
        ) : null}
      </section>

      <section aria-labelledby="hist-title">
        <div className="section-head">
          <h2 id="hist-title">Command history</h2>
          <a href={href('/commands', { agent: a.id })}>All commands of this agent</a>
        </div>
        <ErrorMessage error={commands.error} prefix="Commands could not be loaded" />
        {commands.data?.length === 0 ? <Empty>No commands have been run on this agent.</Empty> : null}
        {commands.data && commands.data.length > 0 ? <CommandTable commands={commands.data} showAgent={false} /> : null}
      </section>
    </>
  );
}
