// Scopes (fleet, client, site, agent) in words, and the policy settings form's text fields.
import type { AlertRule, Client, MaintenanceWindow, PolicySettings, Scope, Site } from '../api';
import { formatDateTime } from './format';

export interface Names {
  clients: Pick<Client, 'id' | 'name'>[];
  sites: Pick<Site, 'id' | 'name' | 'client_name'>[];
  agents: { id: string; hostname: string }[];
}

/** "Everyone", "Client Acme", "Site Acme / HQ", "Agent web-01"; an unknown id is shown as is. */
export function scopeLabel(scope: Scope, names: Names): string {
  const id = scope.id ?? '';
  switch (scope.kind) {
    case 'fleet':
      return 'Whole fleet';
    case 'client':
      return `Client ${names.clients.find((c) => c.id === id)?.name ?? id}`;
    case 'site': {
      const s = names.sites.find((x) => x.id === id);
      return `Site ${s ? `${s.client_name} / ${s.name}` : id}`;
    }
    case 'agent':
      return `Agent ${names.agents.find((a) => a.id === id)?.hostname ?? id}`;
  }
}

/** What a rule watches, in a few words. */
export function ruleCondition(r: Pick<AlertRule, 'kind' | 'threshold' | 'duration_seconds' | 'include_timeouts'>): string {
  const dur = r.duration_seconds >= 60 && r.duration_seconds % 60 === 0 ? `${r.duration_seconds / 60} min` : `${r.duration_seconds} s`;
  switch (r.kind) {
    case 'cpu':
    case 'memory':
      return `${r.kind === 'cpu' ? 'CPU' : 'Memory'} above ${r.threshold ?? '?'}% for ${dur}`;
    case 'disk':
      return `A disk above ${r.threshold ?? '?'}% for ${dur}`;
    case 'offline':
      return `Offline for ${dur}`;
    case 'watchdog_gave_up':
      return 'The watchdog gave up on a service';
    case 'command_failed':
      return r.include_timeouts ? 'A command failed or timed out' : 'A command failed';
  }
}

const WEEKDAYS = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** "Mon, Fri 22:00 for 120 min (Europe/Berlin)", or a one-off window's start and end. */
export function windowWhen(w: Pick<MaintenanceWindow, 'weekly' | 'starts_at' | 'ends_at' | 'time_zone'>): string {
  if (w.weekly) {
    const days = w.weekly.weekdays.map((d) => WEEKDAYS[d] ?? String(d)).join(', ');
    return `${days} ${w.weekly.start} for ${w.weekly.duration_minutes} min (${w.time_zone})`;
  }
  return `${formatDateTime(w.starts_at)} to ${formatDateTime(w.ends_at)}`;
}

/** The policy editor's fields as text (empty = inherit). */
export interface PolicyForm {
  metrics_interval_seconds: string;
  heartbeat_interval_seconds: string;
  network_check_interval_seconds: string;
  /** Comma-separated collector names; empty = inherit. */
  collectors: string;
  /** One service per line: `name[,action[,max_restarts[,cooldown_seconds]]]`; `-` = watch none. */
  watchdog_services: string;
  cpu_alert_percent: string;
  memory_alert_percent: string;
  disk_alert_percent: string;
}

export const EMPTY_POLICY_FORM: PolicyForm = {
  metrics_interval_seconds: '',
  heartbeat_interval_seconds: '',
  network_check_interval_seconds: '',
  collectors: '',
  watchdog_services: '',
  cpu_alert_percent: '',
  memory_alert_percent: '',
  disk_alert_percent: '',
};

export function policyToForm(s: PolicySettings): PolicyForm {
  const n = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  return {
    metrics_interval_seconds: n(s.metrics_interval_seconds),
    heartbeat_interval_seconds: n(s.heartbeat_interval_seconds),
    network_check_interval_seconds: n(s.network_check_interval_seconds),
    collectors: s.collectors ? s.collectors.join(', ') : '',
    watchdog_services: s.watchdog_services
      ? s.watchdog_services.length === 0
        ? '-'
        : s.watchdog_services
            .map((w) => [w.name, w.action ?? '', n(w.max_restarts), n(w.restart_cooldown_seconds)].join(',').replace(/,+$/, ''))
            .join('\n')
      : '',
    cpu_alert_percent: n(s.cpu_alert_percent),
    memory_alert_percent: n(s.memory_alert_percent),
    disk_alert_percent: n(s.disk_alert_percent),
  };
}

/**
 * The form as settings; numbers that do not parse are sent as given so the server names the
 * field in its error. Empty fields are left out (inherit).
 */
export function formToPolicy(f: PolicyForm): PolicySettings {
  const out: Record<string, unknown> = {};
  const num = (key: keyof PolicyForm) => {
    const v = f[key].trim();
    if (v !== '') out[key] = Number.isFinite(Number(v)) ? Number(v) : v;
  };
  num('metrics_interval_seconds');
  num('heartbeat_interval_seconds');
  num('network_check_interval_seconds');
  num('cpu_alert_percent');
  num('memory_alert_percent');
  num('disk_alert_percent');
  const collectors = f.collectors
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (collectors.length) out.collectors = collectors;
  const services = f.watchdog_services.trim();
  if (services === '-') out.watchdog_services = [];
  else if (services) {
    out.watchdog_services = services
      .split('\n')
      .map((line) => line.split(',').map((p) => p.trim()))
      .filter((parts) => parts[0])
      .map(([name, action, max, cooldown]) => {
        const svc: Record<string, unknown> = { name };
        if (action) svc.action = action;
        if (max) svc.max_restarts = Number.isFinite(Number(max)) ? Number(max) : max;
        if (cooldown) svc.restart_cooldown_seconds = Number.isFinite(Number(cooldown)) ? Number(cooldown) : cooldown;
        return svc;
      });
  }
  return out as PolicySettings;
}
