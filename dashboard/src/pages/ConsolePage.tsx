import { useMemo, useState, type FormEvent } from 'react';
import { COMMAND_TYPES, isFinished, type Agent, type CommandRecord, type ConsoleCommandType as CommandType, type NewCommand } from '../api';
import { useApi } from '../session';
import { useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { useFollowedCommands } from '../followCommands';
import { applyAgentStatus, filterAgents, sortAgents, EMPTY_FILTERS } from '../lib/agents';
import { CLAUDE_TASK_MAX_TIMEOUT, COMMAND_MAX_TIMEOUT, claudeTaskUnavailable, hasCapability, parseContextFiles } from '../lib/commandForm';
import { formatDateTime, formatOs } from '../lib/format';
import { href } from '../lib/router';
import { CommandOutput } from '../components/CommandOutput';
import { Empty, ErrorMessage, Loading, PageHeader, StatusBadge, errorText } from '../components/ui';

interface Run {
  /** Local key: the command id, or the agent id for a submission that failed. */
  key: string;
  agent: Agent;
  /** The accepted command as the server answered; followed (live) from then on. */
  command?: CommandRecord;
  error?: unknown;
  /** An error while cancelling the command. */
  cancelError?: unknown;
}

const PLACEHOLDER: Record<CommandType, string> = {
  shell: 'uname -a   (cmd.exe /C on Windows, /bin/sh -c elsewhere)',
  powershell: 'Get-Service | Where-Object Status -eq Running',
  python: 'import platform; print(platform.platform())',
  script: '#!/bin/sh\necho "a script run by the interpreter below"',
  claude_task: 'Summarize the last 100 lines of /var/log/syslog',
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
  const [task, setTask] = useState('');
  const [workDir, setWorkDir] = useState('');
  const [contextFiles, setContextFiles] = useState('');
  const [runs, setRuns] = useState<Run[]>([]);
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);

  const listed = useMemo(() => sortAgents(filterAgents(agents.data ?? [], { ...EMPTY_FILTERS, search }), 'status', 'asc'), [agents.data, search]);
  const pickedAgents = (agents.data ?? []).filter((a) => picked.has(a.id));

  const claudeReason = claudeTaskUnavailable(pickedAgents);
  const claude = type === 'claude_task';
  const maxTimeout = claude ? CLAUDE_TASK_MAX_TIMEOUT : COMMAND_MAX_TIMEOUT;

  // Output streams in as `command_output` events; the finished record replaces it.
  const followed = useFollowedCommands();

  useLiveEvents((e) => {
    if (e.type === 'agent_status') agents.setData((list) => list && applyAgentStatus(list, e.data.agent_id, e.data.online));
  });

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    setFormError(null);
    if (!pickedAgents.length) return setFormError('Choose at least one agent.');
    if (claude && claudeReason) return setFormError(`claude_task cannot run on these agents: ${claudeReason}.`);
    if (!(claude ? task : command).trim()) return setFormError(claude ? 'Enter the task.' : 'Enter the command to run.');
    const t = Number(timeout);
    if (!Number.isInteger(t) || t < 1 || t > maxTimeout) {
      return setFormError(`The timeout must be a whole number of seconds between 1 and ${maxTimeout}${claude ? ' for claude_task' : ''}.`);
    }
    setBusy(true);
    const files = parseContextFiles(contextFiles);
    const body: NewCommand = claude
      ? {
          command_type: type,
          command: task.trim(),
          timeout_seconds: t,
          ...(workDir.trim() ? { working_directory: workDir.trim() } : {}),
          ...(files.length ? { context_files: files } : {}),
        }
      : {
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
          followed.follow(c);
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
              <select id="cmd-type" value={type} onChange={(e) => setType(e.target.value as CommandType)} aria-describedby={claude && claudeReason ? 'cmd-type-reason' : undefined}>
                {COMMAND_TYPES.map((t) => {
                  const off = t === 'claude_task' ? claudeReason : null;
                  return (
                    <option key={t} value={t} disabled={!!off} title={off ?? undefined}>
                      {t === 'claude_task' ? 'claude_task (AI task)' : t}
                    </option>
                  );
                })}
              </select>
              {claude && claudeReason ? (
                <small id="cmd-type-reason" className="error-text">
                  claude_task is {claudeReason}
                </small>
              ) : null}
            </div>
            <div className="field">
              <label htmlFor="cmd-timeout">Timeout (seconds)</label>
              <input id="cmd-timeout" type="number" min={1} max={maxTimeout} value={timeout} onChange={(e) => setTimeoutSeconds(e.target.value)} />
            </div>
            {type === 'script' ? (
              <div className="field">
                <label htmlFor="cmd-interpreter">Interpreter</label>
                <input id="cmd-interpreter" placeholder="agent's configured default" value={interpreter} onChange={(e) => setInterpreter(e.target.value)} />
              </div>
            ) : null}
            {claude ? null : (
              <div className="field checkbox">
                <input id="cmd-elevated" type="checkbox" checked={elevated} onChange={(e) => setElevated(e.target.checked)} />
                <label htmlFor="cmd-elevated">Run elevated</label>
              </div>
            )}
          </div>
          {claude ? (
            <>
              <div className="field">
                <label htmlFor="cmd-task">Task</label>
                <input id="cmd-task" type="text" spellCheck={false} placeholder={PLACEHOLDER.claude_task} value={task} onChange={(e) => setTask(e.target.value)} aria-describedby="cmd-task-hint" />
                <small id="cmd-task-hint" className="muted">
                  One line, without &amp; | ; $ ( ) &lt; &gt; or backticks. At most {CLAUDE_TASK_MAX_TIMEOUT} seconds.
                </small>
              </div>
              <div className="row">
                <div className="field">
                  <label htmlFor="cmd-workdir">Working directory (optional)</label>
                  <input id="cmd-workdir" type="text" spellCheck={false} placeholder="inside the agent's working root" value={workDir} onChange={(e) => setWorkDir(e.target.value)} />
                </div>
                <div className="field">
                  <label htmlFor="cmd-context">Context files (optional)</label>
                  <textarea id="cmd-context" rows={2} spellCheck={false} placeholder="one per line, or separated by commas" value={contextFiles} onChange={(e) => setContextFiles(e.target.value)} />
                </div>
              </div>
            </>
          ) : (
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
          )}
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
          {runs.map((r) => {
            const f = r.command ? followed.get(r.command.id) : undefined;
            const c = f?.record ?? r.command;
            return (
              <li key={r.key} className="run card" data-command-id={c?.id}>
                <div className="run-head">
                  <a href={href(`/agents/${r.agent.id}`)}>{r.agent.hostname}</a>
                  {c ? <StatusBadge status={c.status} /> : <span className="badge badge-failed">not sent</span>}
                  {c ? <span className="muted small-text">{formatDateTime(c.created_at)}</span> : null}
                  {c ? (
                    <a className="small-text" href={href(`/commands/${c.id}`)}>
                      Open
                    </a>
                  ) : null}
                  {c && !isFinished(c.status) ? (
                    <button
                      type="button"
                      className="secondary small"
                      onClick={() =>
                        api.cancelCommand(c.id).then(
                          (done) => {
                            followed.update(done);
                            setRuns((rs) => rs.map((x) => (x.key === r.key ? { ...x, cancelError: undefined } : x)));
                          },
                          (err: unknown) => setRuns((rs) => rs.map((x) => (x.key === r.key ? { ...x, cancelError: err } : x))),
                        )
                      }
                    >
                      Cancel
                    </button>
                  ) : null}
                </div>
                {c ? <code className="run-cmd">{c.command}</code> : null}
                {r.error ? (
                  <div className="error" role="alert">
                    The command was not accepted for {r.agent.hostname}: {errorText(r.error)}
                  </div>
                ) : null}
                <ErrorMessage error={r.cancelError} prefix="Could not cancel this command" />
                <ErrorMessage error={f?.error} prefix="Could not update this command" />
                {c ? <CommandOutput c={c} live={f?.out} streams={hasCapability(r.agent, 'live_output')} /> : null}
              </li>
            );
          })}
        </ol>
      </section>
    </>
  );
}
