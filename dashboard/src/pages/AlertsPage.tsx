// Alerts: open, acknowledged and resolved, filtered by client, site, agent and severity (kept in
// the URL), updated live; acknowledge with a note, resolve by hand.
import { useRef, useState } from 'react';
import type { Alert, AlertQuery, AlertStatus, Severity } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { Dialog, Empty, ErrorMessage, Loading, PageHeader, StatusBadge, Table } from '../components/ui';
import { SEVERITIES, SeverityBadge, useScopeNames } from '../components/ScopePicker';
import { formatDateTime } from '../lib/format';
import { href, navigate } from '../lib/router';

const STATUSES: AlertStatus[] = ['open', 'acknowledged', 'resolved'];

function AlertAction({ alert, action, onDone }: { alert: Alert; action: 'acknowledge' | 'resolve'; onDone: () => void }) {
  const { api } = useApi();
  const [open, setOpen] = useState(false);
  const [note, setNote] = useState('');
  const run = useAction(async () => {
    if (action === 'acknowledge') await api.acknowledgeAlert(alert.id, note);
    else await api.resolveAlert(alert.id, note);
    setOpen(false);
    onDone();
  });
  const label = action === 'acknowledge' ? 'Acknowledge' : 'Resolve';
  return (
    <>
      <button type="button" className="secondary small" onClick={() => setOpen(true)} aria-label={`${label} alert on ${alert.hostname}: ${alert.rule_name}`}>
        {label}
      </button>
      <Dialog open={open} title={`${label}: ${alert.rule_name} on ${alert.hostname}`} onClose={() => setOpen(false)}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run.run();
          }}
        >
          <div className="field">
            <label htmlFor={`note-${alert.id}`}>Note (optional)</label>
            <textarea id={`note-${alert.id}`} value={note} maxLength={2000} onChange={(e) => setNote(e.target.value)} />
          </div>
          <ErrorMessage error={run.error} prefix={`The alert could not be ${action === 'acknowledge' ? 'acknowledged' : 'resolved'}`} />
          <button type="submit" className="primary" disabled={run.busy}>
            {label}
          </button>
        </form>
      </Dialog>
    </>
  );
}

/** One filter of the alerts page: "any" (no filter) or one of `options`. */
function FilterSelect({ label, value, onChange, options }: { label: string; value: string | undefined; onChange: (v: string) => void; options: { value: string; label: string }[] }) {
  const id = `alert-filter-${label.toLowerCase()}`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value ?? ''} onChange={(e) => onChange(e.target.value)}>
        <option value="">any</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function AlertsPage({ query }: { query: URLSearchParams }) {
  const { api, user } = useApi();
  const names = useScopeNames();
  const filter: AlertQuery = {
    status: (query.get('status') as AlertStatus) || undefined,
    severity: (query.get('severity') as Severity) || undefined,
    client_id: query.get('client_id') || undefined,
    site_id: query.get('site_id') || undefined,
    agent_id: query.get('agent_id') || undefined,
  };
  const key = JSON.stringify(filter);
  const alerts = useAsync<Alert[]>(() => api.listAlerts({ ...filter, limit: 200 }), [api, key]);
  const timer = useRef<number | undefined>(undefined);
  useLiveEvents((e) => {
    if (e.type !== 'alert') return;
    // A burst of alerts (a site going offline) reloads once.
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => alerts.reload(), 300);
  });
  const setFilter = (name: string, value: string) => {
    const next: Record<string, string | undefined> = {};
    for (const [k, v] of query.entries()) next[k] = v;
    next[name] = value || undefined;
    navigate('/alerts', next, { replace: true });
  };
  const canAct = user.role !== 'viewer';
  return (
    <>
      <PageHeader title="Alerts">
        <a href={href('/alert-rules')}>Rules and maintenance windows</a> · <a href={href('/notifications')}>Notifications</a>
      </PageHeader>
      <form className="filters inline-form" aria-label="Alert filters" onSubmit={(e) => e.preventDefault()}>
        <FilterSelect label="State" value={filter.status} onChange={(v) => setFilter('status', v)} options={STATUSES.map((s) => ({ value: s, label: s }))} />
        <FilterSelect label="Severity" value={filter.severity} onChange={(v) => setFilter('severity', v)} options={SEVERITIES.map((s) => ({ value: s, label: s }))} />
        <FilterSelect label="Client" value={filter.client_id} onChange={(v) => setFilter('client_id', v)} options={names.clients.map((c) => ({ value: c.id, label: c.name }))} />
        <FilterSelect
          label="Site"
          value={filter.site_id}
          onChange={(v) => setFilter('site_id', v)}
          options={names.sites.map((x) => ({ value: x.id, label: `${x.client_name} / ${x.name}` }))}
        />
        <FilterSelect label="Agent" value={filter.agent_id} onChange={(v) => setFilter('agent_id', v)} options={names.agents.map((a) => ({ value: a.id, label: a.hostname }))} />
      </form>
      <ErrorMessage error={alerts.error} prefix="Alerts could not be loaded" />
      {!alerts.data && !alerts.error ? <Loading what="Loading alerts" /> : null}
      {alerts.data?.length === 0 ? <Empty>No alert matches.</Empty> : null}
      {alerts.data?.length ? (
        <AlertTable alerts={alerts.data} canAct={canAct} onChanged={() => alerts.reload()} />
      ) : null}
    </>
  );
}

/** Alerts as rows; shared by the alerts page and the agent page. */
export function AlertTable({ alerts, canAct, onChanged }: { alerts: Alert[]; canAct: boolean; onChanged: () => void }) {
  return (
    <Table caption="Alerts" columns={['Severity', 'Agent', 'Rule', 'What', 'State', 'Opened', 'Handled', '']}>
      {alerts.map((a) => (
        <tr key={a.id} data-alert-id={a.id} data-status={a.status}>
          <td>
            <SeverityBadge severity={a.severity} />
          </td>
          <td>
            <a href={href(`/agents/${a.agent_id}`)}>{a.hostname}</a>
          </td>
          <td>{a.rule_name}</td>
          <td>{a.message}</td>
          <td>
            <StatusBadge status={a.status} />
          </td>
          <td>{formatDateTime(a.opened_at)}</td>
          <td>
            {a.acknowledged_at ? (
              <div>
                acknowledged by {a.acknowledged_by_email ?? 'a deleted user'} {formatDateTime(a.acknowledged_at)}
                {a.acknowledged_note ? <>: “{a.acknowledged_note}”</> : null}
              </div>
            ) : null}
            {a.resolved_at ? (
              <div>
                resolved {a.resolved_by ? `by ${a.resolved_by_email ?? 'a deleted user'}` : 'automatically'} {formatDateTime(a.resolved_at)}
                {a.resolved_note ? <>: “{a.resolved_note}”</> : null}
              </div>
            ) : null}
          </td>
          <td>
            {canAct && a.status === 'open' ? <AlertAction alert={a} action="acknowledge" onDone={onChanged} /> : null}{' '}
            {canAct && a.status !== 'resolved' ? <AlertAction alert={a} action="resolve" onDone={onChanged} /> : null}
          </td>
        </tr>
      ))}
    </Table>
  );
}
