// Notification channels (webhook, Slack, Teams, email), the routes that send alerts to them,
// a "send test" button, and the recent deliveries with every attempt and its answer.
import { useState } from 'react';
import type { ChannelKind, NotificationChannel, NotificationDelivery, NotificationRoute, Scope, Severity } from '../api';
import { useApi } from '../session';
import { useAction, useAsync, useInterval } from '../hooks';
import { ConfirmButton, Empty, ErrorMessage, Loading, PageHeader, StatusBadge, Table } from '../components/ui';
import { SEVERITIES, ScopePicker, SeverityBadge, useScopeNames } from '../components/ScopePicker';
import { formatDateTime } from '../lib/format';
import { scopeLabel, type Names } from '../lib/scope';

const KINDS: { kind: ChannelKind; label: string }[] = [
  { kind: 'webhook', label: 'Webhook (signed JSON)' },
  { kind: 'slack', label: 'Slack incoming webhook' },
  { kind: 'teams', label: 'Microsoft Teams incoming webhook' },
  { kind: 'email', label: 'Email (the server’s SMTP settings)' },
];

function ChannelForm({ onSaved }: { onSaved: () => void }) {
  const { api } = useApi();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<ChannelKind>('webhook');
  const [url, setUrl] = useState('');
  const [emails, setEmails] = useState('');
  const [secret, setSecret] = useState('');
  const save = useAction(async () => {
    await api.createChannel({
      name,
      kind,
      url: kind === 'email' ? null : url,
      email_to: kind === 'email' ? emails.split(/[,\s]+/).filter(Boolean) : [],
      secret: kind === 'webhook' ? secret : null,
      enabled: true,
    });
    setName('');
    setUrl('');
    setSecret('');
    onSaved();
  });
  return (
    <section className="card" aria-labelledby="channel-form-title">
      <h2 id="channel-form-title">New channel</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="channel-name">Name</label>
          <input id="channel-name" value={name} required maxLength={200} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="channel-kind">Kind</label>
          <select id="channel-kind" value={kind} onChange={(e) => setKind(e.target.value as ChannelKind)}>
            {KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </div>
        {kind === 'email' ? (
          <div className="field">
            <label htmlFor="channel-emails">Recipients</label>
            <input id="channel-emails" value={emails} placeholder="ops@example.com, oncall@example.com" onChange={(e) => setEmails(e.target.value)} />
          </div>
        ) : (
          <div className="field">
            <label htmlFor="channel-url">URL</label>
            <input id="channel-url" type="url" value={url} required onChange={(e) => setUrl(e.target.value)} />
          </div>
        )}
        {kind === 'webhook' ? (
          <div className="field">
            <label htmlFor="channel-secret">Signing secret (16+ characters, shown never again)</label>
            <input id="channel-secret" type="password" autoComplete="new-password" value={secret} onChange={(e) => setSecret(e.target.value)} />
          </div>
        ) : null}
        <button type="submit" className="primary" disabled={save.busy}>
          Add channel
        </button>
      </form>
      <ErrorMessage error={save.error} prefix="The channel could not be saved" />
    </section>
  );
}

function RouteForm({ channels, names, onSaved }: { channels: NotificationChannel[]; names: Names; onSaved: () => void }) {
  const { api } = useApi();
  const [channelId, setChannelId] = useState('');
  const [minSeverity, setMinSeverity] = useState<Severity>('warning');
  const [scope, setScope] = useState<Scope>({ kind: 'fleet' });
  const save = useAction(async () => {
    await api.createRoute({ channel_id: channelId || channels[0]?.id || '', min_severity: minSeverity, scope });
    onSaved();
  });
  return (
    <section className="card" aria-labelledby="route-form-title">
      <h2 id="route-form-title">New route</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="route-channel">Channel</label>
          <select id="route-channel" value={channelId || channels[0]?.id || ''} onChange={(e) => setChannelId(e.target.value)}>
            {channels.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="route-severity">Severity at least</label>
          <select id="route-severity" value={minSeverity} onChange={(e) => setMinSeverity(e.target.value as Severity)}>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <ScopePicker idPrefix="route" value={scope} onChange={setScope} names={names} />
        <button type="submit" className="primary" disabled={save.busy || channels.length === 0}>
          Add route
        </button>
      </form>
      <ErrorMessage error={save.error} prefix="The route could not be saved" />
    </section>
  );
}

function TestButton({ channel, onSent }: { channel: NotificationChannel; onSent: () => void }) {
  const { api } = useApi();
  const test = useAction(async () => {
    await api.testChannel(channel.id);
    onSent();
  });
  return (
    <>
      <button type="button" className="secondary small" disabled={test.busy} onClick={() => void test.run()} aria-label={`Send test to ${channel.name}`}>
        Send test
      </button>
      <ErrorMessage error={test.error} prefix="The test could not be queued" />
    </>
  );
}

/** Switches a channel off (nothing more is queued for it) or on again; its secret is kept. */
function EnableToggle({ channel, onChanged }: { channel: NotificationChannel; onChanged: () => void }) {
  const { api } = useApi();
  const toggle = useAction(async () => {
    await api.updateChannel(channel.id, {
      name: channel.name,
      kind: channel.kind,
      url: channel.kind === 'email' ? null : (channel.url ?? null),
      email_to: channel.email_to,
      enabled: !channel.enabled,
    });
    onChanged();
  });
  const label = channel.enabled ? 'Disable' : 'Enable';
  return (
    <>
      <button type="button" className="secondary small" disabled={toggle.busy} onClick={() => void toggle.run()} aria-label={`${label} ${channel.name}`}>
        {label}
      </button>
      <ErrorMessage error={toggle.error} prefix="The channel could not be changed" />
    </>
  );
}

export function NotificationsPage() {
  const { api, user } = useApi();
  const names = useScopeNames();
  const channels = useAsync<NotificationChannel[]>(() => api.listChannels(), [api]);
  const routes = useAsync<NotificationRoute[]>(() => api.listRoutes(), [api]);
  const deliveries = useAsync<NotificationDelivery[]>(() => api.listDeliveries({ limit: 50 }), [api]);
  // Deliveries change by themselves (retries): refresh while the page is open.
  useInterval(() => deliveries.reload(), 5000);
  const isAdmin = user.role === 'admin';
  const channelName = (id: string) => channels.data?.find((c) => c.id === id)?.name ?? id;
  return (
    <>
      <PageHeader title="Notifications" />
      <section aria-labelledby="channels-title">
        <h2 id="channels-title">Channels</h2>
        <ErrorMessage error={channels.error} prefix="Channels could not be loaded" />
        {!channels.data && !channels.error ? <Loading what="Loading channels" /> : null}
        {channels.data?.length === 0 ? <Empty>No channel: alerts are shown here only.</Empty> : null}
        {channels.data?.length ? (
          <Table caption="Notification channels" columns={['Name', 'Kind', 'Where', 'Enabled', '']}>
            {channels.data.map((c) => (
              <tr key={c.id} data-channel-id={c.id}>
                <td>{c.name}</td>
                <td>{c.kind}</td>
                <td>{c.kind === 'email' ? c.email_to.join(', ') : (c.url ?? '')}</td>
                <td>{c.enabled ? 'yes' : 'no'}</td>
                <td>
                  {user.role !== 'viewer' ? <TestButton channel={c} onSent={() => deliveries.reload()} /> : null}{' '}
                  {isAdmin ? <EnableToggle channel={c} onChanged={() => channels.reload()} /> : null}{' '}
                  {isAdmin ? (
                    <ConfirmButton
                      label="Delete"
                      title={`Delete channel “${c.name}”?`}
                      message="Its routes go too; nothing more is sent to it."
                      confirmLabel="Delete channel"
                      danger
                      onConfirm={async () => {
                        await api.deleteChannel(c.id);
                        channels.reload();
                        routes.reload();
                      }}
                    />
                  ) : null}
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
        {isAdmin ? <ChannelForm onSaved={() => channels.reload()} /> : <p className="muted">Only administrators add channels and routes.</p>}
      </section>
      <section aria-labelledby="routes-title">
        <h2 id="routes-title">Routes</h2>
        <p className="muted">An alert goes to every channel with a route whose severity it reaches and whose scope covers its agent.</p>
        <ErrorMessage error={routes.error} prefix="Routes could not be loaded" />
        {routes.data?.length === 0 ? <Empty>No route: no alert is sent anywhere.</Empty> : null}
        {routes.data?.length ? (
          <Table caption="Notification routes" columns={['Channel', 'Severity at least', 'Applies to', '']}>
            {routes.data.map((r) => (
              <tr key={r.id}>
                <td>{channelName(r.channel_id)}</td>
                <td>
                  <SeverityBadge severity={r.min_severity} />
                </td>
                <td>{scopeLabel(r.scope, names)}</td>
                <td>
                  {isAdmin ? (
                    <ConfirmButton
                      label="Delete"
                      title="Delete this route?"
                      message="Alerts it matched are no longer sent to its channel."
                      confirmLabel="Delete route"
                      danger
                      onConfirm={async () => {
                        await api.deleteRoute(r.id);
                        routes.reload();
                      }}
                    />
                  ) : null}
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
        {isAdmin && channels.data?.length ? <RouteForm channels={channels.data} names={names} onSaved={() => routes.reload()} /> : null}
      </section>
      <section aria-labelledby="deliveries-title">
        <h2 id="deliveries-title">Recent deliveries</h2>
        <ErrorMessage error={deliveries.error} prefix="Deliveries could not be loaded" />
        {deliveries.data?.length === 0 ? <Empty>Nothing sent yet.</Empty> : null}
        {deliveries.data?.length ? (
          <Table caption="Recent deliveries" columns={['Queued', 'Channel', 'What', 'State', 'Attempts']}>
            {deliveries.data.map((d) => (
              <tr key={d.id} data-delivery-id={d.id} data-status={d.status}>
                <td>{formatDateTime(d.created_at)}</td>
                <td>{channelName(d.channel_id)}</td>
                <td>{d.alert_id ? 'alert' : 'test'}</td>
                <td>
                  <StatusBadge status={d.status} />
                  {d.last_error ? <div className="muted">{d.last_error}</div> : null}
                </td>
                <td>
                  <ol className="attempts">
                    {d.attempts.map((a) => (
                      <li key={a.attempt}>
                        {formatDateTime(a.at)}: {a.status_code ?? 'no answer'}
                        {a.error ? ` (${a.error})` : ''} in {a.duration_ms} ms
                      </li>
                    ))}
                  </ol>
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
      </section>
    </>
  );
}
