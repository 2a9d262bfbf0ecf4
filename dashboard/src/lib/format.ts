// Formatting helpers: every number, size, time and duration the pages show goes through here.

/** Shown where a value is unknown (null, undefined, not a number). */
export const NONE = '—';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function isNumber(n: number | null | undefined): n is number {
  return typeof n === 'number' && Number.isFinite(n);
}

/** 1536 -> "1.5 KiB"; three significant digits at most, binary units. */
export function formatBytes(n: number | null | undefined): string {
  if (!isNumber(n)) return NONE;
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  let unit = 0;
  while (v >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${sign}${Math.round(v)} B`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${sign}${trimZeros(v.toFixed(digits))} ${BYTE_UNITS[unit]}`;
}

/** Bytes per second as "1.2 MiB/s". */
export function formatRate(bytesPerSecond: number | null | undefined): string {
  return isNumber(bytesPerSecond) ? `${formatBytes(bytesPerSecond)}/s` : NONE;
}

/** 12.345 -> "12.3%". */
export function formatPercent(n: number | null | undefined, digits = 1): string {
  return isNumber(n) ? `${trimZeros(n.toFixed(digits))}%` : NONE;
}

/** used/total as a percentage, or null when it cannot be computed. */
export function percentOf(used: number | null | undefined, total: number | null | undefined): number | null {
  if (!isNumber(used) || !isNumber(total) || total <= 0) return null;
  return (used / total) * 100;
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** 850 -> "850 ms", 2300 -> "2.3 s", 65000 -> "1 min 5 s", 3723000 -> "1 h 2 min". */
export function formatDuration(ms: number | null | undefined): string {
  if (!isNumber(ms)) return NONE;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${trimZeros(s.toFixed(1))} s`;
  const totalSeconds = Math.round(s);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const rest = totalSeconds % 60;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  return rest > 0 ? `${m} min ${rest} s` : `${m} min`;
}

/**
 * Parses an RFC 3339 string (the REST API's times) or a number of Unix seconds (the agents' wire
 * format, which some snapshots pass through); null when missing or invalid.
 */
export function parseTime(iso: string | number | null | undefined): Date | null {
  if (iso === null || iso === undefined || iso === '') return null;
  const d = typeof iso === 'number' ? new Date(iso < 1e12 ? iso * 1000 : iso) : new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local "2026-11-25 08:43:12". */
export function formatDateTime(iso: string | number | null | undefined): string {
  const d = parseTime(iso);
  if (!d) return NONE;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** "just now", "5 min ago", "3 h ago", "2 days ago"; a time in the future reads "just now". */
export function formatRelative(iso: string | null | undefined, now: Date = new Date()): string {
  const d = parseTime(iso);
  if (!d) return 'never';
  const seconds = Math.floor((now.getTime() - d.getTime()) / 1000);
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(seconds / 3600);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(seconds / 86400);
  return days === 1 ? '1 day ago' : `${days} days ago`;
}

/** "timed_out" -> "timed out". */
export function humanize(s: string): string {
  return s.replace(/_/g, ' ');
}

/** "linux" -> "Linux", "windows" -> "Windows", "macos" -> "macOS"; others capitalised. */
export function formatOs(os: string | null | undefined): string {
  if (!os) return 'Unknown';
  const known: Record<string, string> = { linux: 'Linux', windows: 'Windows', macos: 'macOS', darwin: 'macOS' };
  return known[os.toLowerCase()] ?? os.charAt(0).toUpperCase() + os.slice(1);
}

/** "Linux" + "Debian GNU/Linux 12" -> "Linux Debian GNU/Linux 12", without repeating the OS name when the version already starts with it. */
export function formatOsVersion(os: string | null | undefined, version: string | null | undefined): string {
  const name = formatOs(os);
  const v = (version ?? '').trim();
  if (!v) return name;
  return v.toLowerCase().startsWith(name.toLowerCase()) ? v : `${name} ${v}`;
}
