import { describe, expect, it } from 'vitest';
import { parseLiveEvent } from './live';

describe('parseLiveEvent', () => {
  it('reads the two event types', () => {
    expect(parseLiveEvent('agent_status', '{"agent_id":"a","online":true,"hostname":"h"}')).toEqual({
      type: 'agent_status',
      data: { agent_id: 'a', online: true, hostname: 'h' },
    });
    expect(parseLiveEvent('command_updated', '{"id":"c","agent_id":"a","status":"completed"}')?.type).toBe('command_updated');
  });
  it('rejects unknown types and unreadable data', () => {
    expect(parseLiveEvent('other', '{}')).toBeNull();
    expect(parseLiveEvent('agent_status', 'not json')).toBeNull();
    expect(parseLiveEvent('command_updated', '{"status":"x"}')).toBeNull();
  });
});
