// A small hash router: "#/agents/42?tab=metrics". Hash URLs work with any static file serving,
// so a reload or a bookmark of any page reaches the dashboard without server-side fallbacks.
import { useEffect, useState } from 'react';

export interface Location {
  path: string;
  query: URLSearchParams;
}

/** "#/agents/42?x=1" -> { path: "/agents/42", query: x=1 }; an empty hash is "/". */
export function parseHash(hash: string): Location {
  const raw = hash.replace(/^#/, '');
  const [path, search = ''] = raw.split('?', 2);
  const clean = path && path.startsWith('/') ? path : `/${path ?? ''}`;
  return { path: clean.length > 1 ? clean.replace(/\/+$/, '') : '/', query: new URLSearchParams(search) };
}

/** Matches "/agents/:id" against "/agents/42" -> { id: "42" }; null when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i += 1) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return params;
}

/** The href for a path, for <a> elements. */
export function href(path: string, query?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

export function navigate(path: string, query?: Record<string, string | undefined>, { replace = false } = {}): void {
  const target = href(path, query);
  if (replace) window.location.replace(target);
  else window.location.hash = target.slice(1);
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const onChange = () => setLoc(parseHash(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return loc;
}
