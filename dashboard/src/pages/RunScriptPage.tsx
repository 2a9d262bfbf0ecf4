// Running a saved script as a job: its parameters (typed inputs, defaults filled in), the target
// (chosen agents, a site, a client, or a filter) and an optional expiry. Reached from a script's
// "Run…", the fleet's selection (?agents=), a site (?site=) or a client (?client=).
import { useMemo, useState } from 'react';
import type { Agent, Client, Script, ScriptParameter, Site } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { ErrorMessage, Loading, PageHeader, StatusBadge } from '../components/ui';
import { formatOs } from '../lib/format';
import { href, navigate } from '../lib/router';
import { buildJobBody, initialValues, type TargetForm, type TargetKind } from '../lib/jobs';

function ParamInput({ p, value, onChange }: { p: ScriptParameter; value: string | boolean; onChange: (v: string | boolean) => void }) {
  const id = `run-param-${p.name}`;
  const label = (
    <>
      {p.label || p.name}
      {p.required ? <span aria-hidden="true"> *</span> : null} <code className="muted small-text">{p.name}</code>
    </>
  );
  if (p.kind === 'boolean') {
    return (
      <label className="check" htmlFor={id}>
        <input id={id} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} /> {label}
      </label>
    );
  }
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {p.kind === 'choice' ? (
        <select id={id} value={String(value)} required={p.required} onChange={(e) => onChange(e.target.value)}>
          {p.required ? null : <option value="">(none)</option>}
          {(p.choices ?? []).map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      ) : (
        <input id={id} type={p.kind === 'number' ? 'number' : 'text'} step="any" value={String(value)} required={p.required && p.default == null} onChange={(e) => onChange(e.target.value)} />
      )}
    </div>
  );
}

function RunForm({ script, initialTarget }: { script: Script; initialTarget: TargetForm }) {
  const { api } = useApi();
  const params = script.content.parameters ?? [];
  const [values, setValues] = useState(() => initialValues(params));
  const [target, setTarget] = useState<TargetForm>(initialTarget);
  const [expires, setExpires] = useState('');
  const agents = useAsync<Agent[]>(() => api.listAgents(), [api]);
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  const clients = useAsync<Client[]>(() => api.listClients(), [api]);
  const fleet = useMemo(() => (agents.data ?? []).filter((a) => a.approval !== 'pending'), [agents.data]);
  const setT = (patch: Partial<TargetForm>) => setTarget((t) => ({ ...t, ...patch }));
  const run = useAction(async () => {
    const job = await api.createJob(buildJobBody(script, values, target, expires));
    navigate(`/jobs/${job.id}`);
  });
  const kinds: { kind: TargetKind; label: string }[] = [
    { kind: 'agents', label: 'Chosen agents' },
    { kind: 'site', label: 'A site' },
    { kind: 'client', label: 'A client' },
    { kind: 'filter', label: 'A filter (OS, online)' },
  ];
  const os = script.content.target_os && script.content.target_os !== 'any' ? script.content.target_os : null;
  return (
    <form
      className="stack-form wide"
      aria-label="Run the script"
      onSubmit={(e) => {
        e.preventDefault();
        void run.run();
      }}
    >
      <section className="card" aria-labelledby="run-params-title">
        <h2 id="run-params-title">Parameters</h2>
        {params.length === 0 ? <p className="muted">This script takes no parameters.</p> : null}
        {params.map((p) => (
          <ParamInput key={p.name} p={p} value={values[p.name] ?? ''} onChange={(v) => setValues((vs) => ({ ...vs, [p.name]: v }))} />
        ))}
        {params.some((p) => p.required) ? <p className="muted small-text">* required</p> : null}
      </section>
      <section className="card" aria-labelledby="run-target-title">
        <h2 id="run-target-title">Target</h2>
        {os ? <p className="muted">This script is for {formatOs(os)}: only such agents get it.</p> : null}
        <fieldset>
          <legend>Run on</legend>
          {kinds.map((k) => (
            <label key={k.kind} className="check">
              <input type="radio" name="target-kind" value={k.kind} checked={target.kind === k.kind} onChange={() => setT({ kind: k.kind })} /> {k.label}
            </label>
          ))}
        </fieldset>
        <ErrorMessage error={agents.error} prefix="Agents could not be loaded" />
        {target.kind === 'agents' ? (
          agents.data ? (
            <ul className="picker-list short" aria-label="Agents">
              {fleet.map((a) => (
                <li key={a.id}>
                  <label>
                    <input
                      type="checkbox"
                      checked={target.agentIds.includes(a.id)}
                      onChange={() => setT({ agentIds: target.agentIds.includes(a.id) ? target.agentIds.filter((x) => x !== a.id) : [...target.agentIds, a.id] })}
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
          ) : (
            <Loading what="Loading agents" />
          )
        ) : null}
        {target.kind === 'site' ? (
          <div className="field">
            <label htmlFor="run-site">Site</label>
            <select id="run-site" value={target.siteId} onChange={(e) => setT({ siteId: e.target.value })}>
              <option value="">Choose a site</option>
              {(sites.data ?? []).map((s) => (
                <option key={s.id} value={s.id}>
                  {s.client_name} / {s.name}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        {target.kind === 'client' ? (
          <div className="field">
            <label htmlFor="run-client">Client</label>
            <select id="run-client" value={target.clientId} onChange={(e) => setT({ clientId: e.target.value })}>
              <option value="">Choose a client</option>
              {(clients.data ?? []).map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        {target.kind === 'filter' ? (
          <div className="inline-form tight">
            <div className="field">
              <label htmlFor="run-os">OS</label>
              <select id="run-os" value={target.os} onChange={(e) => setT({ os: e.target.value })}>
                <option value="">Any</option>
                {['windows', 'linux', 'macos'].map((o) => (
                  <option key={o} value={o}>
                    {formatOs(o)}
                  </option>
                ))}
              </select>
            </div>
            <label className="check">
              <input type="checkbox" checked={target.onlineOnly} onChange={(e) => setT({ onlineOnly: e.target.checked })} /> Only agents online now
            </label>
            {!target.os && !target.onlineOnly ? <span className="muted">No criterion: the whole fleet.</span> : null}
          </div>
        ) : null}
        <div className="field">
          <label htmlFor="run-expires">Expires after (hours; empty: never)</label>
          <input id="run-expires" inputMode="decimal" value={expires} onChange={(e) => setExpires(e.target.value)} />
          <small className="muted">Agents still away this long after the start get “expired” instead of the command.</small>
        </div>
      </section>
      <div>
        <button type="submit" className="primary" disabled={run.busy}>
          {run.busy ? 'Starting…' : 'Start job'}
        </button>
      </div>
      <ErrorMessage error={run.error} prefix="The job could not be started" />
    </form>
  );
}

export function RunScriptPage({ query }: { query: URLSearchParams }) {
  const { api, user } = useApi();
  const scripts = useAsync<Script[]>(() => api.listScripts(), [api]);
  const [scriptId, setScriptId] = useState(query.get('script') ?? '');
  const agentIds = (query.get('agents') ?? '').split(',').filter(Boolean);
  const siteId = query.get('site') ?? '';
  const clientId = query.get('client') ?? '';
  const initialTarget: TargetForm = {
    kind: siteId ? 'site' : clientId ? 'client' : 'agents',
    agentIds,
    siteId,
    clientId,
    os: '',
    onlineOnly: false,
  };
  const script = scripts.data?.find((s) => s.id === scriptId);
  return (
    <>
      <PageHeader title="Run a script">
        <a href={href('/scripts')}>Scripts</a>
        <a href={href('/jobs')}>Jobs</a>
      </PageHeader>
      {user.role === 'viewer' ? <p className="muted">Viewers cannot start jobs.</p> : null}
      <ErrorMessage error={scripts.error} prefix="Scripts could not be loaded" />
      {!scripts.data && !scripts.error ? <Loading what="Loading scripts" /> : null}
      {scripts.data ? (
        <div className="field">
          <label htmlFor="run-script">Script</label>
          <select id="run-script" value={scriptId} onChange={(e) => setScriptId(e.target.value)}>
            <option value="">Choose a script</option>
            {scripts.data.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} (v{s.version})
              </option>
            ))}
          </select>
        </div>
      ) : null}
      {script ? (
        <>
          {script.description ? <p className="muted">{script.description}</p> : null}
          {user.role !== 'viewer' ? <RunForm key={`${script.id}-${script.version}`} script={script} initialTarget={initialTarget} /> : null}
        </>
      ) : null}
    </>
  );
}
