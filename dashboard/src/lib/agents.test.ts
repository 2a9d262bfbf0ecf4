import { describe, expect, it } from 'vitest';
import type { Agent } from '../api';
import { applyAgentStatus, countByOs, EMPTY_FILTERS, filterAgents, nextSort, sortAgents } from './agents';

function agent(p: Partial<Agent> & { id: string; hostname: string }): Agent {
  return {
    site_id: 's1',
    site_name: 'Main office',
    client_id: 'c1',
    client_name: 'Acme',
    device_id: `dev-${p.id}`,
    os_type: 'linux',
    os_version: 'Debian 12',
    arch: 'x86_64',
    version: '0.1.0',
    online: true,
    status: 'online',
    last_seen: '2026-11-25T10:00:00Z',
    created_at: '2026-11-01T10:00:00Z',
    approval: 'approved',
    claims_agent_id: null,
    alert_severity: null,
    capabilities: [],
    ...p,
  };
}

const agents: Agent[] = [
  agent({ id: '1', hostname: 'web-10' }),
  agent({ id: '2', hostname: 'web-9', online: false, status: 'offline', last_seen: '2026-11-24T10:00:00Z' }),
  agent({ id: '3', hostname: 'FILESRV', os_type: 'windows', os_version: 'Server 2022', client_id: 'c2', client_name: 'Globex', site_id: 's2', site_name: 'Depot' }),
  agent({ id: '4', hostname: 'db-1', site_id: null, site_name: null, client_id: null, client_name: null, last_seen: null, online: false, status: 'offline' }),
];

const ids = (list: Agent[]) => list.map((a) => a.id);

describe('filterAgents', () => {
  it('returns everything with no filters', () => {
    expect(ids(filterAgents(agents, EMPTY_FILTERS))).toEqual(['1', '2', '3', '4']);
  });
  it('filters by client, site and status together', () => {
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, clientId: 'c1' }))).toEqual(['1', '2']);
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, siteId: 's2' }))).toEqual(['3']);
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, clientId: 'c1', status: 'offline' }))).toEqual(['2']);
  });
  it('searches every word across hostname, client, site and OS, ignoring case', () => {
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, search: 'WEB' }))).toEqual(['1', '2']);
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, search: 'globex server' }))).toEqual(['3']);
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, search: '  depot  ' }))).toEqual(['3']);
    expect(ids(filterAgents(agents, { ...EMPTY_FILTERS, search: 'nothing-like-this' }))).toEqual([]);
  });
});

describe('sortAgents', () => {
  it('sorts hostnames naturally and case-blind', () => {
    expect(sortAgents(agents, 'hostname', 'asc').map((a) => a.hostname)).toEqual(['db-1', 'FILESRV', 'web-9', 'web-10']);
    expect(sortAgents(agents, 'hostname', 'desc').map((a) => a.hostname)).toEqual(['web-10', 'web-9', 'FILESRV', 'db-1']);
  });
  it('puts online first by status, ties by hostname', () => {
    expect(sortAgents(agents, 'status', 'asc').map((a) => a.hostname)).toEqual(['FILESRV', 'web-10', 'db-1', 'web-9']);
  });
  it('sorts by last seen with never-seen oldest', () => {
    expect(ids(sortAgents(agents, 'last_seen', 'desc'))).toEqual(['3', '1', '2', '4']); // 1 and 3 tie: hostname order
  });
  it('does not change its input', () => {
    const before = ids(agents);
    sortAgents(agents, 'client', 'desc');
    expect(ids(agents)).toEqual(before);
  });
  it('flips the direction on the same column and starts a new one ascending', () => {
    expect(nextSort({ key: 'hostname', dir: 'asc' }, 'hostname')).toEqual({ key: 'hostname', dir: 'desc' });
    expect(nextSort({ key: 'hostname', dir: 'desc' }, 'site')).toEqual({ key: 'site', dir: 'asc' });
    expect(nextSort({ key: 'hostname', dir: 'asc' }, 'last_seen')).toEqual({ key: 'last_seen', dir: 'desc' });
  });
});

describe('live status and counts', () => {
  it('applies an online/offline event to the matching agent only', () => {
    const now = new Date('2026-11-25T11:00:00Z');
    const next = applyAgentStatus(agents, '2', true, now);
    expect(next.find((a) => a.id === '2')).toMatchObject({ online: true, status: 'online', last_seen: '2026-11-25T11:00:00.000Z' });
    expect(next.find((a) => a.id === '1')).toBe(agents[0]);
  });
  it('returns the same list when nothing changes', () => {
    expect(applyAgentStatus(agents, 'unknown', true)).toBe(agents);
    expect(applyAgentStatus(agents, '1', true)).toBe(agents);
  });
  it('counts by OS', () => {
    expect(countByOs(agents)).toEqual({ linux: 3, windows: 1 });
  });
});
