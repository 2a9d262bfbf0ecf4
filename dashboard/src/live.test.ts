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
  it('reads a command_output piece, and refuses one without a stream or a whole seq', () => {
    const piece = { id: 'c', agent_id: 'a', stream: 'stdout', seq: 3, data: 'line 4\n' };
    expect(parseLiveEvent('command_output', JSON.stringify(piece))).toEqual({ type: 'command_output', data: piece });
    expect(parseLiveEvent('command_output', JSON.stringify({ ...piece, stream: 'stdin' }))).toBeNull();
    expect(parseLiveEvent('command_output', JSON.stringify({ ...piece, seq: 1.5 }))).toBeNull();
    expect(parseLiveEvent('command_output', JSON.stringify({ ...piece, data: null }))).toBeNull();
  });
  it('reads job_updated, and refuses one without an id', () => {
    expect(parseLiveEvent('job_updated', '{"id":"j"}')).toEqual({ type: 'job_updated', data: { id: 'j' } });
    expect(parseLiveEvent('job_updated', '{"job":"j"}')).toBeNull();
  });
  it('rejects unknown types and unreadable data', () => {
    expect(parseLiveEvent('other', '{}')).toBeNull();
    expect(parseLiveEvent('agent_status', 'not json')).toBeNull();
    expect(parseLiveEvent('command_updated', '{"status":"x"}')).toBeNull();
  });
});
