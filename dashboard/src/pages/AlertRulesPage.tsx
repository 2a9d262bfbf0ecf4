// Alert rules and maintenance windows: what opens an alert, and when nothing should.
import { useState } from 'react';
import type { AlertRule, AlertRuleBody, MaintenanceWindow, RuleKind, Scope, Severity } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { ConfirmButton, Empty, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';
import { SEVERITIES, ScopePicker, SeverityBadge, useScopeNames } from '../components/ScopePicker';
import { ruleCondition, scopeLabel, windowWhen, type Names } from '../lib/scope';

const KINDS: { kind: RuleKind; label: string }[] = [
  { kind: 'cpu', label: 'CPU use above a threshold' },
  { kind: 'memory', label: 'Memory use above a threshold' },
  { kind: 'disk', label: 'A disk fuller than a threshold' },
  { kind: 'offline', label: 'Agent offline' },
  { kind: 'watchdog_gave_up', label: 'Watchdog gave up on a service' },
  { kind: 'command_failed', label: 'A command failed' },
];

const isMetric = (k: RuleKind) => k === 'cpu' || k === 'memory' || k === 'disk';

function RuleForm({ names, editing, onSaved, onCancel }: { names: Names; editing: AlertRule | null; onSaved: () => void; onCancel: () => void }) {
  const { api } = useApi();
  const [name, setName] = useState(editing?.name ?? '');
  const [kind, setKind] = useState<RuleKind>(editing?.kind ?? 'cpu');
  const [threshold, setThreshold] = useState(String(editing?.threshold ?? 90));
  const [duration, setDuration] = useState(String(editing?.duration_seconds ?? 300));
  const [includeTimeouts, setIncludeTimeouts] = useState(editing?.include_timeouts ?? false);
  const [severity, setSeverity] = useState<Severity>(editing?.severity ?? 'warning');
  const [scope, setScope] = useState<Scope>(editing?.scope ?? { kind: 'fleet' });
  const [enabled, setEnabled] = useState(editing?.enabled ?? true);
  const save = useAction(async () => {
    const body: AlertRuleBody = {
      name,
      kind,
      severity,
      scope,
      enabled,
      threshold: isMetric(kind) ? Number(threshold) : null,
      duration_seconds: isMetric(kind) || kind === 'offline' ? Number(duration) : null,
      include_timeouts: kind === 'command_failed' ? includeTimeouts : null,
    };
    if (editing) await api.updateAlertRule(editing.id, body);
    else await api.createAlertRule(body);
    onSaved();
  });
  return (
    <section className="card" aria-labelledby="rule-form-title">
      <h2 id="rule-form-title">{editing ? `Change rule “${editing.name}”` : 'New alert rule'}</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="rule-name">Name</label>
          <input id="rule-name" value={name} maxLength={200} required onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="rule-kind">Condition</label>
          <select id="rule-kind" value={kind} onChange={(e) => setKind(e.target.value as RuleKind)}>
            {KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </div>
        {isMetric(kind) ? (
          <div className="field">
            <label htmlFor="rule-threshold">Threshold (%)</label>
            <input id="rule-threshold" type="number" min={0} max={100} step="any" value={threshold} onChange={(e) => setThreshold(e.target.value)} />
          </div>
        ) : null}
        {isMetric(kind) || kind === 'offline' ? (
          <div className="field">
            <label htmlFor="rule-duration">For at least (seconds)</label>
            <input id="rule-duration" type="number" min={0} max={604800} value={duration} onChange={(e) => setDuration(e.target.value)} />
          </div>
        ) : null}
        {kind === 'command_failed' ? (
          <label>
            <input type="checkbox" checked={includeTimeouts} onChange={(e) => setIncludeTimeouts(e.target.checked)} /> Timed-out commands too
          </label>
        ) : null}
        <div className="field">
          <label htmlFor="rule-severity">Severity</label>
          <select id="rule-severity" value={severity} onChange={(e) => setSeverity(e.target.value as Severity)}>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <ScopePicker idPrefix="rule" value={scope} onChange={setScope} names={names} />
        <label>
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
        </label>
        <button type="submit" className="primary" disabled={save.busy}>
          {editing ? 'Save rule' : 'Add rule'}
        </button>
        {editing ? (
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </form>
      <ErrorMessage error={save.error} prefix="The rule could not be saved" />
    </section>
  );
}

const WEEKDAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function WindowForm({ names, onSaved }: { names: Names; onSaved: () => void }) {
  const { api } = useApi();
  const [name, setName] = useState('');
  const [scope, setScope] = useState<Scope>({ kind: 'site', id: '' });
  const [weekly, setWeekly] = useState(true);
  const [days, setDays] = useState<number[]>([6, 7]);
  const [start, setStart] = useState('22:00');
  const [minutes, setMinutes] = useState('120');
  const [zone, setZone] = useState('UTC');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const save = useAction(async () => {
    await api.createMaintenanceWindow({
      name,
      scope,
      time_zone: zone,
      ...(weekly
        ? { weekly: { weekdays: days, start, duration_minutes: Number(minutes) } }
        : { starts_at: from ? new Date(from).toISOString() : '', ends_at: to ? new Date(to).toISOString() : '' }),
    });
    setName('');
    onSaved();
  });
  return (
    <section className="card" aria-labelledby="window-form-title">
      <h2 id="window-form-title">New maintenance window</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="window-name">Name</label>
          <input id="window-name" value={name} maxLength={200} required onChange={(e) => setName(e.target.value)} />
        </div>
        <ScopePicker idPrefix="window" value={scope} onChange={setScope} names={names} kinds={['client', 'site', 'agent']} />
        <div className="field">
          <label htmlFor="window-repeat">When</label>
          <select id="window-repeat" value={weekly ? 'weekly' : 'once'} onChange={(e) => setWeekly(e.target.value === 'weekly')}>
            <option value="weekly">every week</option>
            <option value="once">once</option>
          </select>
        </div>
        {weekly ? (
          <>
            <fieldset>
              <legend>Days</legend>
              {WEEKDAY_NAMES.map((d, i) => (
                <label key={d}>
                  <input
                    type="checkbox"
                    checked={days.includes(i + 1)}
                    onChange={() => setDays(days.includes(i + 1) ? days.filter((x) => x !== i + 1) : [...days, i + 1].sort())}
                  />{' '}
                  {d}
                </label>
              ))}
            </fieldset>
            <div className="field">
              <label htmlFor="window-start">Starts at (HH:MM)</label>
              <input id="window-start" value={start} onChange={(e) => setStart(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor="window-minutes">Lasts (minutes)</label>
              <input id="window-minutes" type="number" min={1} max={10080} value={minutes} onChange={(e) => setMinutes(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor="window-zone">Time zone</label>
              <input id="window-zone" value={zone} onChange={(e) => setZone(e.target.value)} placeholder="Europe/Berlin" />
            </div>
          </>
        ) : (
          <>
            <div className="field">
              <label htmlFor="window-from">From</label>
              <input id="window-from" type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor="window-to">To</label>
              <input id="window-to" type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
            </div>
          </>
        )}
        <button type="submit" className="primary" disabled={save.busy}>
          Add window
        </button>
      </form>
      <ErrorMessage error={save.error} prefix="The window could not be saved" />
    </section>
  );
}

export function AlertRulesPage() {
  const { api, user } = useApi();
  const names = useScopeNames();
  const rules = useAsync<AlertRule[]>(() => api.listAlertRules(), [api]);
  const windows = useAsync<MaintenanceWindow[]>(() => api.listMaintenanceWindows(), [api]);
  const [editing, setEditing] = useState<AlertRule | null>(null);
  const canEdit = user.role !== 'viewer';
  return (
    <>
      <PageHeader title="Alert rules" />
      <ErrorMessage error={rules.error} prefix="Rules could not be loaded" />
      {!rules.data && !rules.error ? <Loading what="Loading rules" /> : null}
      {rules.data?.length === 0 ? <Empty>No rule yet: nothing opens an alert.</Empty> : null}
      {rules.data?.length ? (
        <Table caption="Alert rules" columns={['Name', 'Condition', 'Severity', 'Applies to', 'Enabled', '']}>
          {rules.data.map((r) => (
            <tr key={r.id} data-rule-id={r.id}>
              <td>{r.name}</td>
              <td>{ruleCondition(r)}</td>
              <td>
                <SeverityBadge severity={r.severity} />
              </td>
              <td>{scopeLabel(r.scope, names)}</td>
              <td>{r.enabled ? 'yes' : 'no'}</td>
              <td>
                {canEdit ? (
                  <>
                    <button type="button" className="secondary small" onClick={() => setEditing(r)}>
                      Edit
                    </button>{' '}
                    <ConfirmButton
                      label="Delete"
                      title={`Delete rule “${r.name}”?`}
                      message="Its unresolved alerts resolve; their history is kept."
                      confirmLabel="Delete rule"
                      danger
                      onConfirm={async () => {
                        await api.deleteAlertRule(r.id);
                        rules.reload();
                      }}
                    />
                  </>
                ) : null}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      {canEdit ? (
        <RuleForm
          key={editing?.id ?? 'new'}
          names={names}
          editing={editing}
          onSaved={() => {
            setEditing(null);
            rules.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      ) : null}
      <section aria-labelledby="windows-title">
        <h2 id="windows-title">Maintenance windows</h2>
        <p className="muted">While a window is on, no new alert opens on the agents it covers and nothing is sent.</p>
        <ErrorMessage error={windows.error} prefix="Windows could not be loaded" />
        {windows.data?.length === 0 ? <Empty>No maintenance window.</Empty> : null}
        {windows.data?.length ? (
          <Table caption="Maintenance windows" columns={['Name', 'Applies to', 'When', '']}>
            {windows.data.map((w) => (
              <tr key={w.id} data-window-id={w.id}>
                <td>{w.name}</td>
                <td>{scopeLabel(w.scope, names)}</td>
                <td>{windowWhen(w)}</td>
                <td>
                  {canEdit ? (
                    <ConfirmButton
                      label="Delete"
                      title={`Delete window “${w.name}”?`}
                      message="Alerts can open again on these agents."
                      confirmLabel="Delete window"
                      danger
                      onConfirm={async () => {
                        await api.deleteMaintenanceWindow(w.id);
                        windows.reload();
                      }}
                    />
                  ) : null}
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
        {canEdit ? <WindowForm names={names} onSaved={() => windows.reload()} /> : null}
      </section>
    </>
  );
}
