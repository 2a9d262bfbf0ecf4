// The signed-in session: the token (kept in localStorage so a reload stays signed in), the user,
// and the API client bound to it. Any 401 or the token's expiry ends the session and sends the
// user back to the login page with a message saying why.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiError, createApi, type ApiClient, type LoginResponse, type User } from './api';
import { navigate } from './lib/router';

export interface Session {
  token: string;
  expires_at: string;
  user: User;
}

const STORAGE_KEY = 'gururmm.session';
export const EXPIRED_MESSAGE = 'Your session has expired. Please sign in again.';

/** The stored session when it is well-formed and not expired; `expired` when one was there but is over. */
export function readStoredSession(storage: Pick<Storage, 'getItem'>, now = Date.now()): { session: Session | null; expired: boolean } {
  try {
    const raw = storage.getItem(STORAGE_KEY);
    if (!raw) return { session: null, expired: false };
    const s = JSON.parse(raw) as Session;
    if (!s || typeof s.token !== 'string' || !s.user) return { session: null, expired: false };
    const exp = Date.parse(s.expires_at);
    if (Number.isFinite(exp) && exp <= now) return { session: null, expired: true };
    return { session: s, expired: false };
  } catch {
    return { session: null, expired: false };
  }
}

interface SessionContextValue {
  session: Session | null;
  api: ApiClient;
  /** Why the last session ended, shown on the login page. */
  notice: string | null;
  /** Signs in; `secondFactor` is a TOTP or recovery code for accounts that need one. */
  login(email: string, password: string, secondFactor?: string): Promise<void>;
  /** Finishes single sign-on: the one-time code from the redirect, for a session. */
  loginWithSsoCode(code: string): Promise<void>;
  /** Forgets the session in this browser only (it already ended on the server). */
  logout(notice?: string): void;
  /** Signs out: ends the session on the server, then here. */
  signOut(): Promise<void>;
  /** Takes a fresh session the server handed out (after a password change). */
  adopt(res: LoginResponse): void;
}

export const SIGNED_OUT_MESSAGE = 'You have signed out.';

const SessionContext = createContext<SessionContextValue | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [initial] = useState(() => readStoredSession(window.localStorage));
  const [session, setSession] = useState<Session | null>(initial.session);
  const [notice, setNotice] = useState<string | null>(initial.expired ? EXPIRED_MESSAGE : null);
  const tokenRef = useRef<string | null>(session?.token ?? null);
  tokenRef.current = session?.token ?? null;

  const logout = useCallback((why?: string) => {
    window.localStorage.removeItem(STORAGE_KEY);
    tokenRef.current = null;
    setSession(null);
    setNotice(why ?? null);
  }, []);

  const api = useMemo(
    () =>
      createApi({
        getToken: () => tokenRef.current,
        onUnauthorized: () => {
          if (tokenRef.current) logout(EXPIRED_MESSAGE);
        },
      }),
    [logout],
  );

  const adopt = useCallback((res: LoginResponse) => {
    const s: Session = { token: res.token, expires_at: res.expires_at, user: res.user };
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(s));
    tokenRef.current = s.token;
    setNotice(null);
    setSession(s);
  }, []);

  const login = useCallback(
    async (email: string, password: string, secondFactor?: string) => {
      const res = await api.login(email, password, secondFactor);
      // The server requires a second factor this account lacks: its setup is the only page
      // open to it, so start there.
      if (res.two_factor_setup_required) navigate('/account/two-factor', undefined, { replace: true });
      adopt(res);
    },
    [api, adopt],
  );

  const loginWithSsoCode = useCallback(
    async (code: string) => {
      const res = await api.oidcExchange(code);
      if (res.two_factor_setup_required) navigate('/account/two-factor', undefined, { replace: true });
      else navigate('/', undefined, { replace: true });
      adopt(res);
    },
    [api, adopt],
  );

  const signOut = useCallback(async () => {
    try {
      await api.logout();
      logout(SIGNED_OUT_MESSAGE);
    } catch (err) {
      // A 401 means it was over already; anything else: the server did not hear it.
      const unheard = !(err instanceof ApiError && err.status === 401);
      logout(unheard ? 'Signed out in this browser, but the server could not be told: the session stays valid until it expires.' : SIGNED_OUT_MESSAGE);
    }
  }, [api, logout]);

  // End the session when the token's own expiry passes, even with no request in flight.
  useEffect(() => {
    if (!session) return;
    const ms = Date.parse(session.expires_at) - Date.now();
    if (!Number.isFinite(ms)) return;
    const timer = window.setTimeout(() => logout(EXPIRED_MESSAGE), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => window.clearTimeout(timer);
  }, [session, logout]);

  // Another tab signing out (or in) is followed here.
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key === STORAGE_KEY) setSession(readStoredSession(window.localStorage).session);
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  const value = useMemo(
    () => ({ session, api, notice, login, loginWithSsoCode, logout, signOut, adopt }),
    [session, api, notice, login, loginWithSsoCode, logout, signOut, adopt],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionContextValue {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error('useSession outside SessionProvider');
  return ctx;
}

/** The API client and the signed-in user, for pages that are only shown when signed in. */
export function useApi(): { api: ApiClient; user: User } {
  const { api, session } = useSession();
  if (!session) throw new Error('useApi without a session');
  return { api, user: session.user };
}
