import { useEffect, useRef, useState } from 'react';
import { COMMAND_STATUSES, type Agent, type CommandRecord, type CommandStatus } from '../api';
import { useApi } from '../session';
import { useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { humanize } from '../lib/format';
import { CommandTable } from '../components/CommandTable';
import { Empty, ErrorMessage, Loading, PageHeader } from '../components/ui';

/** A datetime-local input's value ("2026-11-25T08:30", local time) as RFC 3339 UTC, or undefined. */
export function localInputToIso(value: string): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function CommandsPage({ initialAgent }: { initialAgent: string }) {
  const { api } = useApi();
  const agents = useAsync<Agent[]>(() => api.listAgents(), [api]);
  const [agentId, setAgentId] = useState(initialAgent);
  const [status, setStatus] = useState<'' | CommandStatus>('');
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [limit, setLimit] = useState(100);
  const commands = useAsync<CommandRecord[]>(
    () =>
      api.listCommands({
        agent_id: agentId || undefined,
        status: status || undefined,
        since: localInputToIso(since),
        until: localInputToIso(until),
        limit,
      }),
    [api, agentId, status, since, until, limit],
  );

  // Commands change state often; gather the events of a second into one reload.
  const pending = useRef<number | undefined>(undefined);
  useLiveEvents((e) => {
    if (e.type !== 'command_updated') return;
    if (agentId && e.data.agent_id !== agentId) return;
    if (pending.current === undefined) {
      pending.current = window.setTimeout(() => {
        pending.current = undefined;
        commands.reload();
      }, 1000);
    }
  });
  useEffect(() => () => window.clearTimeout(pending.current), []);

  return (
    <>
      <PageHeader title="Commands" />
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter commands">
        <div className="field">
          <label htmlFor="c-agent">Agent</label>
          <select id="c-agent" value={agentId} onChange={(e) => setAgentId(e.target.value)}>
            <option value="">All agents</option>
            {(agents.data ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.hostname}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="c-status">Status</label>
          <select id="c-status" value={status} onChange={(e) => setStatus(e.target.value as CommandStatus | '')}>
            <option value="">Any status</option>
            {COMMAND_STATUSES.map((s) => (
              <option key={s} value={s}>
                {humanize(s)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="c-since">Since</label>
          <input id="c-since" type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="c-until">Until</label>
          <input id="c-until" type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="c-limit">Show</label>
          <select id="c-limit" value={limit} onChange={(e) => setLimit(Number(e.target.value))}>
            {[50, 100, 500].map((n) => (
              <option key={n} value={n}>
                {n} newest
              </option>
            ))}
          </select>
        </div>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            setAgentId('');
            setStatus('');
            setSince('');
            setUntil('');
          }}
        >
          Clear filters
        </button>
      </form>
      <ErrorMessage error={agents.error} prefix="Agents could not be loaded" />
      <ErrorMessage error={commands.error} prefix="Commands could not be loaded" />
      {commands.loading && !commands.data ? <Loading what="Loading commands" /> : null}
      {commands.data?.length === 0 ? <Empty>No commands match these filters.</Empty> : null}
      {commands.data && commands.data.length > 0 ? <CommandTable commands={commands.data} /> : null}
    </>
  );
}
