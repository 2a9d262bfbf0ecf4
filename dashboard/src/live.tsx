// The server's event stream (GET /api/events, server-sent events) shared by every page:
// agents going online/offline and commands changing state arrive here and are handed to the
// pages that subscribed. When the stream drops it is reopened with a growing delay.
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { LIVE_EVENT_TYPES, type LiveEvent } from './api';
import { useSession } from './session';

export type LiveState = 'connecting' | 'open' | 'reconnecting';
type Listener = (e: LiveEvent) => void;

interface LiveContextValue {
  state: LiveState;
  subscribe(listener: Listener): () => void;
}

const LiveContext = createContext<LiveContextValue | null>(null);

/** Parses one SSE message into a LiveEvent, or null when its data is not the expected JSON. */
export function parseLiveEvent(type: string, data: string): LiveEvent | null {
  if (!(LIVE_EVENT_TYPES as string[]).includes(type)) return null;
  try {
    const parsed = JSON.parse(data) as Record<string, unknown>;
    if (!parsed || typeof parsed !== 'object') return null;
    if (type === 'agent_status' && typeof parsed.agent_id === 'string') {
      return { type, data: parsed as LiveEvent['data'] } as LiveEvent;
    }
    if (type === 'command_updated' && typeof parsed.id === 'string') {
      return { type, data: parsed as LiveEvent['data'] } as LiveEvent;
    }
    if (
      type === 'command_output' &&
      typeof parsed.id === 'string' &&
      (parsed.stream === 'stdout' || parsed.stream === 'stderr') &&
      Number.isInteger(parsed.seq) &&
      typeof parsed.data === 'string'
    ) {
      return { type, data: parsed as LiveEvent['data'] } as LiveEvent;
    }
    if (type === 'alert' && typeof parsed.id === 'string' && typeof parsed.status === 'string') {
      return { type, data: parsed as LiveEvent['data'] } as LiveEvent;
    }
    if (type === 'job_updated' && typeof parsed.id === 'string') {
      return { type, data: parsed as LiveEvent['data'] } as LiveEvent;
    }
    if (type === 'agent_update' && typeof parsed.agent_id === 'string' && typeof parsed.status === 'string') {
      return { type, data: parsed as LiveEvent['data'] } as LiveEvent;
    }
  } catch {
    // fall through
  }
  return null;
}

export function LiveProvider({ children }: { children: ReactNode }) {
  const { api, session } = useSession();
  const [state, setState] = useState<LiveState>('connecting');
  const listeners = useRef(new Set<Listener>());
  const token = session?.token;

  useEffect(() => {
    if (!token || typeof EventSource === 'undefined') return;
    let source: EventSource | null = null;
    let retryTimer: number | undefined;
    let attempts = 0;
    let stopped = false;

    const dispatch = (type: string) => (msg: MessageEvent<string>) => {
      const event = parseLiveEvent(type, msg.data);
      if (!event) {
        console.warn(`ignored live event ${type}: unreadable data`, msg.data);
        return;
      }
      for (const l of listeners.current) l(event);
    };

    const retry = () => {
      attempts += 1;
      retryTimer = window.setTimeout(open, Math.min(30_000, 1000 * 2 ** (attempts - 1)));
    };

    // Every (re)connection gets a fresh single-use ticket: the token never goes into a URL.
    // A 401 on the ticket request ends the session (the API client's onUnauthorized).
    const open = async () => {
      if (stopped) return;
      setState(attempts === 0 ? 'connecting' : 'reconnecting');
      let ticket: string;
      try {
        ticket = (await api.eventTicket()).ticket;
      } catch {
        if (!stopped) retry();
        return;
      }
      if (stopped) return;
      source = new EventSource(api.eventsUrl(ticket));
      for (const t of LIVE_EVENT_TYPES) source.addEventListener(t, dispatch(t) as EventListener);
      source.onopen = () => {
        attempts = 0;
        setState('open');
      };
      source.onerror = () => {
        setState('reconnecting');
        // A ticket works once, so the browser's own reconnect cannot succeed: close and open
        // again with a new ticket (whose request ends the session if it is over).
        source?.close();
        retry();
      };
    };
    void open();
    return () => {
      stopped = true;
      window.clearTimeout(retryTimer);
      source?.close();
    };
  }, [api, token]);

  const value = useRef<LiveContextValue>({
    state,
    subscribe(listener) {
      listeners.current.add(listener);
      return () => listeners.current.delete(listener);
    },
  });
  value.current = { ...value.current, state };
  return <LiveContext.Provider value={value.current}>{children}</LiveContext.Provider>;
}

export function useLiveState(): LiveState {
  return useContext(LiveContext)?.state ?? 'connecting';
}

/** Calls `handler` for every live event while the component is mounted (the latest handler). */
export function useLiveEvents(handler: (e: LiveEvent) => void): void {
  const ctx = useContext(LiveContext);
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => ctx?.subscribe((e) => ref.current(e)), [ctx?.subscribe]);
}
