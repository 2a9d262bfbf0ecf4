// The script library: saved scripts with parameters, each edit a new version; export to a file
// and import from one. A script is run on agents from its "Run…" link (RunScriptPage).
import { useState } from 'react';
import type { Script, ScriptImported, ScriptVersion } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { ConfirmButton, Empty, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';
import { downloadText } from '../components/CommandOutput';
import { formatDateTime, formatOs, humanize } from '../lib/format';
import { href } from '../lib/router';
import {
  EMPTY_PARAM,
  EMPTY_SCRIPT_FORM,
  envVarHint,
  formToDefinition,
  PARAMETER_KINDS,
  SCRIPT_KINDS,
  scriptToForm,
  TARGET_OSES,
  type ParamForm,
  type ScriptForm,
} from '../lib/jobs';

function ParamEditor({ p, index, kind, onChange, onRemove }: { p: ParamForm; index: number; kind: ScriptForm['command_type']; onChange: (p: ParamForm) => void; onRemove: () => void }) {
  const id = (f: string) => `param-${index}-${f}`;
  const n = index + 1;
  return (
    <fieldset className="param-row" aria-label={`Parameter ${n}`}>
      <div className="field">
        <label htmlFor={id('name')}>Parameter {n} name</label>
        <input id={id('name')} value={p.name} required pattern="[A-Za-z][A-Za-z0-9_]{0,63}" onChange={(e) => onChange({ ...p, name: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor={id('label')}>Label</label>
        <input id={id('label')} value={p.label} onChange={(e) => onChange({ ...p, label: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor={id('kind')}>Kind</label>
        <select id={id('kind')} value={p.kind} onChange={(e) => onChange({ ...p, kind: e.target.value as ParamForm['kind'], default: '' })}>
          {PARAMETER_KINDS.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={id('default')}>Default</label>
        {p.kind === 'boolean' ? (
          <select id={id('default')} value={p.default} onChange={(e) => onChange({ ...p, default: e.target.value })}>
            <option value="">none</option>
            <option value="true">true</option>
            <option value="false">false</option>
          </select>
        ) : (
          <input id={id('default')} value={p.default} inputMode={p.kind === 'number' ? 'decimal' : undefined} onChange={(e) => onChange({ ...p, default: e.target.value })} />
        )}
      </div>
      {p.kind === 'choice' ? (
        <div className="field">
          <label htmlFor={id('choices')}>Choices (one per line or comma-separated)</label>
          <textarea id={id('choices')} rows={2} value={p.choices} onChange={(e) => onChange({ ...p, choices: e.target.value })} />
        </div>
      ) : null}
      <label className="check">
        <input type="checkbox" checked={p.required} onChange={(e) => onChange({ ...p, required: e.target.checked })} /> Required
      </label>
      <span className="muted small-text">
        read as <code>{envVarHint(kind, p.name)}</code>
      </span>
      <button type="button" className="secondary small" onClick={onRemove}>
        Remove parameter {n}
      </button>
    </fieldset>
  );
}

function ScriptEditor({ editing, onSaved, onCancel }: { editing: Script | null; onSaved: (s: Script) => void; onCancel: () => void }) {
  const { api } = useApi();
  const [form, setForm] = useState<ScriptForm>(editing ? scriptToForm(editing) : EMPTY_SCRIPT_FORM);
  const set = <K extends keyof ScriptForm>(key: K, value: ScriptForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const setParam = (i: number, p: ParamForm) => setForm((f) => ({ ...f, parameters: f.parameters.map((q, j) => (j === i ? p : q)) }));
  const save = useAction(async () => {
    const body = formToDefinition(form);
    onSaved(editing ? await api.updateScript(editing.id, body) : await api.createScript(body));
  });
  return (
    <section className="card" aria-labelledby="script-form-title">
      <h2 id="script-form-title">{editing ? `Change script “${editing.name}” (version ${editing.version})` : 'New script'}</h2>
      <form
        className="stack-form wide"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="script-name">Name</label>
          <input id="script-name" value={form.name} required maxLength={200} onChange={(e) => set('name', e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="script-description">Description</label>
          <input id="script-description" value={form.description} onChange={(e) => set('description', e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="script-category">Category</label>
          <input id="script-category" value={form.category} onChange={(e) => set('category', e.target.value)} />
        </div>
        <div className="inline-form tight">
          <div className="field">
            <label htmlFor="script-type">Command type</label>
            <select id="script-type" value={form.command_type} onChange={(e) => set('command_type', e.target.value as ScriptForm['command_type'])}>
              {SCRIPT_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          </div>
          {form.command_type === 'script' ? (
            <div className="field">
              <label htmlFor="script-interpreter">Interpreter</label>
              <input id="script-interpreter" value={form.interpreter} placeholder="the agent's own" onChange={(e) => set('interpreter', e.target.value)} />
            </div>
          ) : null}
          <div className="field">
            <label htmlFor="script-os">Target OS</label>
            <select id="script-os" value={form.target_os} onChange={(e) => set('target_os', e.target.value as ScriptForm['target_os'])}>
              {TARGET_OSES.map((o) => (
                <option key={o} value={o}>
                  {o === 'any' ? 'any' : formatOs(o)}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="script-timeout">Default timeout (seconds)</label>
            <input id="script-timeout" inputMode="numeric" value={form.default_timeout_seconds} onChange={(e) => set('default_timeout_seconds', e.target.value)} />
          </div>
        </div>
        <div className="field">
          <label htmlFor="script-body">Body</label>
          <textarea
            id="script-body"
            className="code-editor"
            rows={14}
            spellCheck={false}
            value={form.body}
            required
            onChange={(e) => set('body', e.target.value)}
            onKeyDown={(e) => {
              // Tab indents inside the body (Escape, then Tab, leaves the field).
              if (e.key !== 'Tab' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey || e.currentTarget.dataset.escaped === '1') {
                e.currentTarget.dataset.escaped = e.key === 'Escape' ? '1' : '';
                return;
              }
              e.preventDefault();
              const t = e.currentTarget;
              const { selectionStart: a, selectionEnd: b } = t;
              const next = `${t.value.slice(0, a)}\t${t.value.slice(b)}`;
              set('body', next);
              window.requestAnimationFrame(() => t.setSelectionRange(a + 1, a + 1));
            }}
          />
          <small className="muted">
            Tab indents; press Escape first to leave with Tab. Each parameter reaches the script as an environment variable of its name: in shell <code>$TOP_PATH</code>, in PowerShell{' '}
            <code>$env:TOP_PATH</code>, in Python <code>os.environ["TOP_PATH"]</code>.
          </small>
        </div>
        <h3>Parameters</h3>
        {form.parameters.length === 0 ? <p className="muted">No parameters.</p> : null}
        {form.parameters.map((p, i) => (
          <ParamEditor key={i} p={p} index={i} kind={form.command_type} onChange={(q) => setParam(i, q)} onRemove={() => setForm((f) => ({ ...f, parameters: f.parameters.filter((_, j) => j !== i) }))} />
        ))}
        <div>
          <button type="button" className="secondary small" onClick={() => setForm((f) => ({ ...f, parameters: [...f.parameters, EMPTY_PARAM] }))}>
            Add parameter
          </button>
        </div>
        <div>
          <button type="submit" className="primary" disabled={save.busy}>
            {editing ? 'Save script' : 'Add script'}
          </button>{' '}
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
      <ErrorMessage error={save.error} prefix="The script could not be saved" />
    </section>
  );
}

function Versions({ script }: { script: Script }) {
  const { api } = useApi();
  const versions = useAsync<ScriptVersion[]>(() => api.scriptVersions(script.id), [api, script.id, script.version]);
  const [shown, setShown] = useState<number | null>(null);
  const v = versions.data?.find((x) => x.version === shown);
  return (
    <section className="card" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions of “{script.name}”</h2>
      <ErrorMessage error={versions.error} prefix="The versions could not be loaded" />
      {!versions.data && !versions.error ? <Loading what="Loading the versions" /> : null}
      {versions.data?.length ? (
        <Table caption={`Versions of ${script.name}`} columns={['Version', 'Saved by', 'Saved', '']}>
          {versions.data.map((x) => (
            <tr key={x.version} data-version={x.version}>
              <td>{x.version}</td>
              <td>{x.created_by ?? 'the server (starter script)'}</td>
              <td>{formatDateTime(x.created_at)}</td>
              <td>
                <button type="button" className="secondary small" aria-pressed={shown === x.version} onClick={() => setShown(shown === x.version ? null : x.version)}>
                  {shown === x.version ? 'Hide' : 'View'} version {x.version}
                </button>
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      {v ? (
        <div data-testid="version-body">
          <p className="muted">
            Version {v.version}: {humanize(v.content.command_type)}
            {v.content.parameters?.length ? `, parameters ${v.content.parameters.map((p) => p.name).join(', ')}` : ''}
          </p>
          <pre className="code-editor">{v.content.body}</pre>
        </div>
      ) : null}
    </section>
  );
}

function ImportExport({ onImported }: { onImported: () => void }) {
  const { api, user } = useApi();
  const [result, setResult] = useState<ScriptImported | null>(null);
  const exp = useAction(async () => {
    const file = await api.exportScripts();
    downloadText('gururmm-scripts.json', `${JSON.stringify(file, null, 2)}\n`);
  });
  const imp = useAction(async (file: File) => {
    setResult(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await file.text());
    } catch {
      throw new Error(`${file.name} is not a JSON file`);
    }
    setResult(await api.importScripts(parsed as Parameters<typeof api.importScripts>[0]));
    onImported();
  });
  const list = (names: string[]) => (names.length ? names.join(', ') : 'none');
  return (
    <section className="card" aria-labelledby="import-title">
      <h2 id="import-title">Export and import</h2>
      <div className="inline-form tight">
        <button type="button" className="secondary" disabled={exp.busy} onClick={() => void exp.run()}>
          Export all scripts
        </button>
        {user.role !== 'viewer' ? (
          <div className="field">
            <label htmlFor="script-import">Import scripts from a file</label>
            <input
              id="script-import"
              type="file"
              accept="application/json,.json"
              disabled={imp.busy}
              onChange={(e) => {
                const f = e.target.files?.[0];
                e.target.value = '';
                if (f) void imp.run(f);
              }}
            />
          </div>
        ) : null}
      </div>
      <ErrorMessage error={exp.error} prefix="The scripts could not be exported" />
      <ErrorMessage error={imp.error} prefix="The file could not be imported" />
      {result ? (
        <p role="status" data-testid="import-result">
          Created: {list(result.created)}. Updated: {list(result.updated)}. Unchanged: {list(result.unchanged)}.
        </p>
      ) : null}
    </section>
  );
}

export function ScriptsPage() {
  const { api, user } = useApi();
  const [search, setSearch] = useState('');
  const [category, setCategory] = useState('');
  const scripts = useAsync<Script[]>(() => api.listScripts({ search: search || undefined, category: category || undefined }), [api, search, category]);
  const all = useAsync<Script[]>(() => api.listScripts(), [api]);
  const categories = [...new Set((all.data ?? []).map((s) => s.category).filter(Boolean))].sort();
  const [editing, setEditing] = useState<Script | 'new' | null>(null);
  const [selected, setSelected] = useState<Script | null>(null);
  const [note, setNote] = useState('');
  const canEdit = user.role !== 'viewer';
  const reload = () => {
    scripts.reload();
    all.reload();
  };
  return (
    <>
      <PageHeader title="Scripts">
        <a href={href('/jobs')}>Jobs</a>
        {canEdit ? (
          <button type="button" className="primary small" onClick={() => setEditing('new')}>
            New script
          </button>
        ) : null}
      </PageHeader>
      <div className="filters">
        <div className="field">
          <label htmlFor="script-search">Search</label>
          <input id="script-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="script-category-filter">Category</label>
          <select id="script-category-filter" value={category} onChange={(e) => setCategory(e.target.value)}>
            <option value="">All</option>
            {categories.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorMessage error={scripts.error} prefix="Scripts could not be loaded" />
      {!scripts.data && !scripts.error ? <Loading what="Loading scripts" /> : null}
      {scripts.data?.length === 0 ? <Empty>No script matches.</Empty> : null}
      {scripts.data?.length ? (
        <Table caption="Scripts" columns={['Name', 'Category', 'Type', 'OS', 'Version', 'Changed', '']}>
          {scripts.data.map((s) => (
            <tr key={s.id} data-script-id={s.id}>
              <td>
                {s.name}
                {s.description ? <div className="muted">{s.description}</div> : null}
                {s.content.parameters?.length ? <div className="muted small-text">Parameters: {s.content.parameters.map((p) => p.name).join(', ')}</div> : null}
              </td>
              <td>{s.category}</td>
              <td>{humanize(s.content.command_type)}</td>
              <td>{!s.content.target_os || s.content.target_os === 'any' ? 'any' : formatOs(s.content.target_os)}</td>
              <td>{s.version}</td>
              <td>{formatDateTime(s.updated_at)}</td>
              <td>
                {canEdit ? (
                  <a className="button small" href={href('/run', { script: s.id })}>
                    Run…
                  </a>
                ) : null}{' '}
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => {
                    setSelected(s);
                    if (canEdit) setEditing(s);
                  }}
                >
                  {canEdit ? 'Edit' : 'View'}
                </button>{' '}
                {canEdit ? (
                  <ConfirmButton
                    label="Delete"
                    title={`Delete script “${s.name}”?`}
                    message="Its versions go too. Jobs that ran it keep their record."
                    confirmLabel="Delete script"
                    danger
                    onConfirm={async () => {
                      await api.deleteScript(s.id);
                      if (selected?.id === s.id) setSelected(null);
                      if (editing !== 'new' && editing?.id === s.id) setEditing(null);
                      reload();
                    }}
                  />
                ) : null}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      <p role="status" className="ok-text" data-testid="script-saved">
        {note}
      </p>
      {canEdit && editing ? (
        <ScriptEditor
          key={editing === 'new' ? 'new' : `${editing.id}-${editing.version}`}
          editing={editing === 'new' ? null : editing}
          onSaved={(s) => {
            setNote(`Saved “${s.name}” as version ${s.version}.`);
            setEditing(s);
            setSelected(s);
            reload();
          }}
          onCancel={() => setEditing(null)}
        />
      ) : null}
      {selected ? <Versions script={selected} /> : null}
      <ImportExport onImported={reload} />
    </>
  );
}
