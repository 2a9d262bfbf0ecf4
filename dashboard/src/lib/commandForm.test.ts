import { describe, expect, it } from 'vitest';
import type { Agent } from '../api';
import { claudeTaskUnavailable, parseContextFiles } from './commandForm';

function agent(hostname: string, capabilities: string[]): Agent {
  return {
    id: hostname,
    hostname,
    capabilities,
    site_id: 's1',
    site_name: 'Main office',
    client_id: 'c1',
    client_name: 'Acme',
    device_id: null,
    os_type: 'linux',
    os_version: 'Debian 12',
    arch: 'x86_64',
    version: '0.2.0',
    online: true,
    status: 'online',
    last_seen: null,
    created_at: '2026-11-01T10:00:00Z',
    approval: 'approved',
    claims_agent_id: null,
    alert_severity: null,
  };
}

describe('claudeTaskUnavailable', () => {
  it('allows claude_task when every chosen agent has it enabled', () => {
    expect(claudeTaskUnavailable([agent('a', ['live_output', 'claude_task']), agent('b', ['claude_task'])])).toBeNull();
  });
  it('names the chosen agents without it', () => {
    expect(claudeTaskUnavailable([agent('host-a', ['live_output']), agent('ok', ['claude_task']), agent('host-b', [])])).toBe('not enabled on: host-a, host-b');
  });
  it('is not offered before agents are chosen', () => {
    expect(claudeTaskUnavailable([])).toMatch(/choose the agents first/);
  });
});

describe('parseContextFiles', () => {
  it('takes one per line or comma-separated, without blanks', () => {
    expect(parseContextFiles('src/main.rs\n  README.md , docs/a.md,\n\n')).toEqual(['src/main.rs', 'README.md', 'docs/a.md']);
    expect(parseContextFiles('  ')).toEqual([]);
  });
});
