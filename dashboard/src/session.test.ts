import { describe, expect, it } from 'vitest';
import { readStoredSession } from './session';

const store = (value: string | null) => ({ getItem: () => value });
const session = (expires_at: string) =>
  JSON.stringify({ token: 't', expires_at, user: { id: 'u', email: 'a@example.test', role: 'admin', created_at: '' } });
const now = Date.parse('2026-11-25T12:00:00Z');

describe('readStoredSession', () => {
  it('keeps a session that has not expired', () => {
    expect(readStoredSession(store(session('2026-11-26T12:00:00Z')), now).session?.token).toBe('t');
  });
  it('drops an expired one and says so', () => {
    expect(readStoredSession(store(session('2026-11-25T11:00:00Z')), now)).toEqual({ session: null, expired: true });
  });
  it('ignores nothing stored and garbage', () => {
    expect(readStoredSession(store(null), now)).toEqual({ session: null, expired: false });
    expect(readStoredSession(store('{not json'), now)).toEqual({ session: null, expired: false });
    expect(readStoredSession(store('{"token": 1}'), now)).toEqual({ session: null, expired: false });
  });
});
