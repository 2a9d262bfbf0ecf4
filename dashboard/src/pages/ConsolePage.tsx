import { useCallback, useMemo, useState, type FormEvent } from 'react';
import { COMMAND_TYPES, isFinished, type Agent, type CommandRecord, type ConsoleCommandType as CommandType } from '../api';
import { useApi } from '../session';
import { useAsync, useInterval } from '../hooks';
import { useLiveEvents } from '../live';
import { applyAgentStatus, filterAgents, sortAgents, EMPTY_FILTERS } from '../lib/agents';
import { formatDateTime, formatOs } from '../lib/format';
import { href } from '../lib/router';
import { CommandOutput } from '../components/CommandOutput';
import { Empty, ErrorMessage, Loading, PageHeader, StatusBadge, errorText } from '../components/ui';

interface Run {
  /** Local key: the command id, or the agent id for a submission that failed. */
  key: string;
  agent: Agent;
  command?: CommandRecord;
  error?: unknown;
  /** An error while following the command after it was accepted. */
  refreshError?: unknown;
}

const PLACEHOLDER: Record<CommandType, string> = {
  shell: 'uname -a   (cmd.exe /C on Windows, /bin/sh -c elsewhere)',
  powershell: 'Get-Service | Where-Object Status -eq Running',
  python: 'import platform; print(platform.platform())',
  script: '#!/bin/sh\necho "a script run by the interpreter below"',
};

export function ConsolePage({ initialAgents }: { initialAgents: string[] }) {
  const { api, user } = useApi();
  const agents = useAsync<Agent[]>(() => api.listAgents(), [api]);
  const [picked, setPicked] = useState<Set<string>>(() => new Set(initialAgents));
  const [search, setSearch] = useState('');
  const [type, setType] = useState<CommandType>('shell');
  const [command, setCommand] = useState('');
  const [timeout, setTimeoutSeconds] = useState('300');
  const [elevated, setElevated] = useState(false);
  const [interpreter, setInterpreter] = useState('');
  const [runs, setRuns] = useState<Run[]>([]);
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);

  const listed = useMemo(() => sortAgents(filterAgents(agents.data ?? [], { ...EMPTY_FILTERS, search }), 'status', 'asc'), [agents.data, search]);
  const pickedAgents = (agents.data ?? []).filter((a) => picked.has(a.id));

  const refresh = useCallback(
    async (id: string) => {
      try {
        const c = await api.getCommand(id);
        setRuns((rs) => rs.map((r) => (r.command?.id === id ? { ...r, command: c, refreshError: undefined } : r)));
      } catch (err) {
        setRuns((rs) => rs.map((r) => (r.command?.id === id ? { ...r, refreshError: err } : r)));
      }
    },
    [api],
  );

  useLiveEvents((e) => {
    if (e.type === 'command_updated' && runs.some((r) => r.command?.id === e.data.id)) void refresh(e.data.id);
    if (e.type === 'agent_status') agents.setData((list) => list && applyAgentStatus(list, e.data.agent_id, e.data.online));
  });

  // Also poll what is still running: output arrives as the server stores it, and a missed
  // event cannot leave a command looking stuck.
  const open = runs.filter((r) => r.command && !isFinished(r.command.status));
  useInterval(() => open.forEach((r) => void refresh(r.command!.id)), 2000, open.length > 0);

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    setFormError(null);
    if (!pickedAgents.length) return setFormError('Choose at least one agent.');
    if (!command.trim()) return setFormError('Enter the command to run.');
    const t = Number(timeout);
    if (!Number.isInteger(t) || t < 1 || t > 86400) return setFormError('The timeout must be a whole number of seconds between 1 and 86400.');
    setBusy(true);
    const body = {
      command_type: type,
      command,
      timeout_seconds: t,
      elevated,
      ...(type === 'script' && interpreter.trim() ? { interpreter: interpreter.trim() } : {}),
    };
    const results = await Promise.all(
      pickedAgents.map(async (agent): Promise<Run> => {
        try {
          const c = await api.sendCommand(agent.id, body);
          return { key: c.id, agent, command: c };
        } catch (error) {
          return { key: `${agent.id}-${Date.now()}`, agent, error };
        }
      }),
    );
    setRuns((rs) => [...results, ...rs]);
    setBusy(false);
  }

  if (user.role === 'viewer') {
    return (
      <>
        <PageHeader title="Command console" />
        <p className="notice">Your role (viewer) cannot run commands. Ask an administrator for the technician role.</p>
      </>
    );
  }

  return (
    <>
      <PageHeader title="Command console" />
      <form className="console" onSubmit={submit} aria-label="Run a command">
        <fieldset className="agent-picker">
          <legend>Agents ({picked.size} chosen)</legend>
          <div className="field">
            <label htmlFor="pick-search">Find agents</label>
            <input id="pick-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="Hostname, client, site…" />
          </div>
          <div className="picker-actions">
            <button type="button" className="secondary small" onClick={() => setPicked(new Set([...picked, ...listed.filter((a) => a.online).map((a) => a.id)]))}>
              Choose all online shown
            </button>
            <button type="button" className="secondary small" onClick={() => setPicked(new Set())}>
              Clear
            </button>
          </div>
          <ErrorMessage error={agents.error} prefix="Agents could not be loaded" />
          {agents.loading && !agents.data ? <Loading what="Loading agents" /> : null}
          <ul className="picker-list">
            {listed.map((a) => (
              <li key={a.id}>
                <label>
                  <input
                    type="checkbox"
                    checked={picked.has(a.id)}
                    onChange={() => {
                      const next = new Set(picked);
                      if (next.has(a.id)) next.delete(a.id);
                      else next.add(a.id);
                      setPicked(next);
                    }}
                  />
                  <span className="picker-host">{a.hostname}</span>
                  <StatusBadge status={a.status} />
                  <span className="muted">
                    {formatOs(a.os_type)} · {a.client_name ?? 'unassigned'}
                    {a.site_name ? ` / ${a.site_name}` : ''}
                  </span>
                </label>
              </li>
            ))}
          </ul>
          {agents.data?.length === 0 ? <Empty>No agents yet.</Empty> : null}
        </fieldset>

        <div className="command-form">
          <div className="row">
            <div className="field">
              <label htmlFor="cmd-type">Type</label>
              <select id="cmd-type" value={type} onChange={(e) => setType(e.target.value as CommandType)}>
                {COMMAND_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="cmd-timeout">Timeout (seconds)</label>
              <input id="cmd-timeout" type="number" min={1} max={86400} value={timeout} onChange={(e) => setTimeoutSeconds(e.target.value)} />
            </div>
            {type === 'script' ? (
              <div className="field">
                <label htmlFor="cmd-interpreter">Interpreter</label>
                <input id="cmd-interpreter" placeholder="agent's configured default" value={interpreter} onChange={(e) => setInterpreter(e.target.value)} />
              </div>
            ) : null}
            <div className="field checkbox">
              <input id="cmd-elevated" type="checkbox" checked={elevated} onChange={(e) => setElevated(e.target.checked)} />
              <label htmlFor="cmd-elevated">Run elevated</label>
            </div>
          </div>
          <div className="field">
            <label htmlFor="cmd-text">Command</label>
            <textarea
              id="cmd-text"
              rows={type === 'script' ? 8 : 3}
              spellCheck={false}
              placeholder={PLACEHOLDER[type]}
              value={command}
              onChange={(e) => setCommand(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void submit();
              }}
              aria-describedby="cmd-hint"
            />
            <small id="cmd-hint" className="muted">
              Ctrl+Enter runs it. Offline agents receive the command when they reconnect.
            </small>
          </div>
          {formError ? (
            <div className="error" role="alert">
              {formError}
            </div>
          ) : null}
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Sending…' : `Run on ${pickedAgents.length} agent${pickedAgents.length === 1 ? '' : 's'}`}
          </button>
        </div>
      </form>

      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Results</h2>
        {runs.length === 0 ? <Empty>Commands you run appear here with their status and output.</Empty> : null}
        <ol className="runs" aria-live="polite">
          {runs.map((r) => (
            <li key={r.key} className="run card" data-command-id={r.command?.id}>
              <div className="run-head">
                <a href={href(`/agents/${r.agent.id}`)}>{r.agent.hostname}</a>
                {r.command ? <StatusBadge status={r.command.status} /> : <span className="badge badge-failed">not sent</span>}
                {r.command ? <code className="run-cmd">{r.command.command}</code> : null}
                {r.command ? <span className="muted small-text">{formatDateTime(r.command.created_at)}</span> : null}
                {r.command && !isFinished(r.command.status) ? (
                  <button
                    type="button"
                    className="secondary small"
                    onClick={() =>
                      api.cancelCommand(r.command!.id).then(
                        (c) => setRuns((rs) => rs.map((x) => (x.key === r.key ? { ...x, command: c } : x))),
                        (err: unknown) => setRuns((rs) => rs.map((x) => (x.key === r.key ? { ...x, refreshError: err } : x))),
                      )
                    }
                  >
                    Cancel
                  </button>
                ) : null}
              </div>
              {r.error ? (
                <div className="error" role="alert">
                  The command was not accepted for {r.agent.hostname}: {errorText(r.error)}
                </div>
              ) : null}
              <ErrorMessage error={r.refreshError} prefix="Could not update this command" />
              {r.command ? <CommandOutput c={r.command} /> : null}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}
