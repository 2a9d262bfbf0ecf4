// Filtering, sorting and counting agents for the fleet table; pure functions, unit-tested.
import type { Agent } from '../api';

export interface AgentFilters {
  search: string;
  clientId: string;
  siteId: string;
  status: '' | 'online' | 'offline';
}

export const EMPTY_FILTERS: AgentFilters = { search: '', clientId: '', siteId: '', status: '' };

/** Agents matching every set filter; the search looks in hostname, client, site, OS and version. */
export function filterAgents(agents: Agent[], f: AgentFilters): Agent[] {
  const words = f.search.trim().toLowerCase().split(/\s+/).filter(Boolean);
  return agents.filter((a) => {
    if (f.clientId && a.client_id !== f.clientId) return false;
    if (f.siteId && a.site_id !== f.siteId) return false;
    if (f.status && a.status !== f.status) return false;
    if (words.length) {
      const hay = [a.hostname, a.client_name, a.site_name, a.os_type, a.os_version, a.version, a.arch]
        .filter(Boolean)
        .join(' ')
        .toLowerCase();
      if (!words.every((w) => hay.includes(w))) return false;
    }
    return true;
  });
}

export type AgentSortKey = 'hostname' | 'client' | 'site' | 'os' | 'version' | 'status' | 'last_seen';
export type SortDir = 'asc' | 'desc';

function sortValue(a: Agent, key: AgentSortKey): string | number {
  switch (key) {
    case 'hostname':
      return a.hostname.toLowerCase();
    case 'client':
      return (a.client_name ?? '').toLowerCase();
    case 'site':
      return (a.site_name ?? '').toLowerCase();
    case 'os':
      return `${a.os_type ?? ''} ${a.os_version ?? ''}`.toLowerCase();
    case 'version':
      return a.version ?? '';
    case 'status':
      return a.online ? 0 : 1;
    case 'last_seen':
      return a.last_seen ? new Date(a.last_seen).getTime() : 0;
  }
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** A sorted copy; ties fall back to hostname so the order is stable across refreshes. */
export function sortAgents(agents: Agent[], key: AgentSortKey, dir: SortDir): Agent[] {
  const sign = dir === 'asc' ? 1 : -1;
  return [...agents].sort((x, y) => {
    const a = sortValue(x, key);
    const b = sortValue(y, key);
    let c = typeof a === 'number' && typeof b === 'number' ? a - b : collator.compare(String(a), String(b));
    if (c === 0 && key !== 'hostname') return collator.compare(x.hostname, y.hostname);
    return sign * c;
  });
}

/** The next sort state when a column header is activated: same column flips, a new one starts ascending. */
export function nextSort(current: { key: AgentSortKey; dir: SortDir }, key: AgentSortKey): { key: AgentSortKey; dir: SortDir } {
  if (current.key === key) return { key, dir: current.dir === 'asc' ? 'desc' : 'asc' };
  return { key, dir: key === 'last_seen' ? 'desc' : 'asc' };
}

/** Applies a live online/offline change to a list; unknown agents leave it unchanged. */
export function applyAgentStatus(agents: Agent[], agentId: string, online: boolean, now = new Date()): Agent[] {
  let changed = false;
  const next = agents.map((a) => {
    if (a.id !== agentId || a.online === online) return a;
    changed = true;
    return { ...a, online, status: online ? ('online' as const) : ('offline' as const), last_seen: now.toISOString() };
  });
  return changed ? next : agents;
}

/** Counts of agents by OS type, for when the stats endpoint is not at hand. */
export function countByOs(agents: Agent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of agents) out[a.os_type || 'unknown'] = (out[a.os_type || 'unknown'] ?? 0) + 1;
  return out;
}
