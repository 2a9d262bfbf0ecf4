// The open-alert count in the header, kept current by the event stream (and a slow poll, in
// case an event was missed while the stream reconnected).
import { useRef } from 'react';
import type { AlertSummary } from '../api';
import { useApi } from '../session';
import { useAsync, useInterval } from '../hooks';
import { useLiveEvents } from '../live';
import { href } from '../lib/router';

export function alertCountText(s: AlertSummary | undefined): string {
  if (!s) return 'Alerts';
  if (s.open === 0) return 'No open alerts';
  return `${s.open} open alert${s.open === 1 ? '' : 's'}`;
}

export function AlertCount() {
  const { api } = useApi();
  const summary = useAsync<AlertSummary>(() => api.alertSummary(), [api]);
  const timer = useRef<number | undefined>(undefined);
  useLiveEvents((e) => {
    if (e.type !== 'alert') return;
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => summary.reload(), 300);
  });
  useInterval(() => summary.reload(), 60_000);
  const s = summary.data;
  const cls = s?.critical ? 'has-critical' : s?.warning ? 'has-warning' : '';
  return (
    <a className={`alert-count ${cls}`} href={href('/alerts', { status: 'open' })} data-testid="alert-count" title="Open alerts by severity">
      {alertCountText(s)}
      {s && s.open > 0 ? ` (${s.critical} critical, ${s.warning} warning, ${s.info} info)` : ''}
    </a>
  );
}
