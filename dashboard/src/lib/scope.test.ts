import { describe, expect, it } from 'vitest';
import { formatDateTime } from './format';
import { formToPolicy, policyToForm, ruleCondition, scopeLabel, windowWhen, EMPTY_POLICY_FORM } from './scope';

const names = {
  clients: [{ id: 'c1', name: 'Acme' }],
  sites: [{ id: 's1', name: 'HQ', client_name: 'Acme' }],
  agents: [{ id: 'a1', hostname: 'web-01' }],
};

describe('scopeLabel', () => {
  it('names each kind of scope', () => {
    expect(scopeLabel({ kind: 'fleet' }, names)).toBe('Whole fleet');
    expect(scopeLabel({ kind: 'client', id: 'c1' }, names)).toBe('Client Acme');
    expect(scopeLabel({ kind: 'site', id: 's1' }, names)).toBe('Site Acme / HQ');
    expect(scopeLabel({ kind: 'agent', id: 'a1' }, names)).toBe('Agent web-01');
    expect(scopeLabel({ kind: 'agent', id: 'gone' }, names)).toBe('Agent gone');
  });
});

describe('ruleCondition', () => {
  it('says what a rule watches', () => {
    expect(ruleCondition({ kind: 'cpu', threshold: 90, duration_seconds: 300, include_timeouts: false })).toBe('CPU above 90% for 5 min');
    expect(ruleCondition({ kind: 'offline', threshold: null, duration_seconds: 45, include_timeouts: false })).toBe('Offline for 45 s');
    expect(ruleCondition({ kind: 'command_failed', threshold: null, duration_seconds: 0, include_timeouts: true })).toBe('A command failed or timed out');
  });
});

describe('windowWhen', () => {
  it('describes weekly and one-off windows', () => {
    expect(windowWhen({ weekly: { weekdays: [1, 5], start: '22:00', duration_minutes: 120 }, time_zone: 'Europe/Berlin', starts_at: null, ends_at: null })).toBe(
      'Mon, Fri 22:00 for 120 min (Europe/Berlin)',
    );
    const [a, b] = ['2026-12-04T10:00:00Z', '2026-12-04T12:00:00Z'];
    expect(windowWhen({ weekly: null, starts_at: a, ends_at: b, time_zone: 'UTC' })).toBe(`${formatDateTime(a)} to ${formatDateTime(b)}`);
  });
});

describe('policy form', () => {
  it('leaves empty fields out (inherit) and parses services', () => {
    const settings = formToPolicy({ ...EMPTY_POLICY_FORM, metrics_interval_seconds: '15', collectors: 'cpu, memory', watchdog_services: 'nginx,restart,3,60\ncron' });
    expect(settings).toEqual({
      metrics_interval_seconds: 15,
      collectors: ['cpu', 'memory'],
      watchdog_services: [{ name: 'nginx', action: 'restart', max_restarts: 3, restart_cooldown_seconds: 60 }, { name: 'cron' }],
    });
    expect(formToPolicy(EMPTY_POLICY_FORM)).toEqual({});
  });

  it('"-" watches no service, and round-trips through the form', () => {
    expect(formToPolicy({ ...EMPTY_POLICY_FORM, watchdog_services: '-' })).toEqual({ watchdog_services: [] });
    const s = { heartbeat_interval_seconds: 30, watchdog_services: [{ name: 'sshd', max_restarts: 2 }] };
    expect(formToPolicy(policyToForm(s))).toEqual({ heartbeat_interval_seconds: 30, watchdog_services: [{ name: 'sshd', max_restarts: 2 }] });
  });

  it('keeps a value that is not a number so the server names the field', () => {
    expect(formToPolicy({ ...EMPTY_POLICY_FORM, metrics_interval_seconds: 'soon' })).toEqual({ metrics_interval_seconds: 'soon' });
  });
});
