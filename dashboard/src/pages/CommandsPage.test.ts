import { describe, expect, it } from 'vitest';
import { localInputToIso } from './CommandsPage';

describe('localInputToIso', () => {
  it('turns a datetime-local value (local time; UTC in tests) into RFC 3339 UTC', () => {
    expect(localInputToIso('2026-11-25T08:30')).toBe('2026-11-25T08:30:00.000Z');
  });
  it('leaves empty and invalid values out of the query', () => {
    expect(localInputToIso('')).toBeUndefined();
    expect(localInputToIso('yesterday')).toBeUndefined();
  });
});
