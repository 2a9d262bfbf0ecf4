// The arithmetic behind the SVG charts: scales, "nice" axis ticks, line paths with gaps, and
// rates from cumulative counters. Kept free of React so it is unit-tested on its own.

export interface Point {
  /** Milliseconds since the epoch. */
  t: number;
  /** The value, or null where there is no data (the line breaks there). */
  v: number | null;
}

export type Scale = (x: number) => number;

/** Maps [d0, d1] linearly onto [r0, r1]; an empty domain maps everything to the middle. */
export function linearScale([d0, d1]: [number, number], [r0, r1]: [number, number]): Scale {
  if (d1 === d0) {
    const mid = (r0 + r1) / 2;
    return () => mid;
  }
  const k = (r1 - r0) / (d1 - d0);
  return (x) => r0 + (x - d0) * k;
}

/** The step of about `count` intervals across `span`, rounded to 1, 2, 2.5 or 5 times a power of ten. */
export function niceStep(span: number, count = 4): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

export interface Axis {
  min: number;
  max: number;
  ticks: number[];
}

/**
 * A value axis from 0 (or below, for negative data) up to a round number at or above the largest
 * value. `fixedMax` (e.g. 100 for percentages) is used when the data stays under it.
 */
export function valueAxis(
  values: (number | null)[],
  { fixedMax, count = 4, binary = false }: { fixedMax?: number; count?: number; binary?: boolean } = {},
): Axis {
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const dataMax = finite.length ? Math.max(...finite) : 0;
  if (binary && dataMax >= 1024) {
    // Byte values: round in the largest binary unit below the maximum (KiB, MiB, ...), so the
    // ticks read 20 KiB, 40 KiB rather than 19.5 KiB, 39.1 KiB.
    const unit = 1024 ** Math.floor(Math.log(dataMax) / Math.log(1024));
    const scaled = valueAxis(finite.map((v) => v / unit), { fixedMax: fixedMax === undefined ? undefined : fixedMax / unit, count });
    return { min: scaled.min * unit, max: scaled.max * unit, ticks: scaled.ticks.map((t) => t * unit) };
  }
  const dataMin = finite.length ? Math.min(...finite) : 0;
  const min = Math.min(0, dataMin);
  let top = fixedMax !== undefined && dataMax <= fixedMax ? fixedMax : dataMax;
  if (top <= min) top = min + (fixedMax ?? 1);
  // Bytes are whole: a step under 1 would give ticks that all read "0 B".
  const step = binary ? Math.max(1, niceStep(top - min, count)) : niceStep(top - min, count);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(top / step) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(roundTo(v, step));
  return { min: lo, max: hi, ticks };
}

function roundTo(v: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(v.toFixed(decimals));
}

/** An SVG path through the points, in order; a null value ends the current segment. */
export function linePath(points: Point[], x: Scale, y: Scale): string {
  let path = '';
  let drawing = false;
  for (const p of points) {
    if (p.v === null || !Number.isFinite(p.v)) {
      drawing = false;
      continue;
    }
    const cmd = drawing ? 'L' : 'M';
    path += `${path ? ' ' : ''}${cmd}${fmt(x(p.t))},${fmt(y(p.v))}`;
    drawing = true;
  }
  return path;
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** The points with a value but no valued neighbour: a line cannot show them, so they get a dot. */
export function isolatedPoints(points: Point[]): Point[] {
  const has = (p: Point | undefined) => p !== undefined && p.v !== null && Number.isFinite(p.v);
  return points.filter((p, i) => has(p) && !has(points[i - 1]) && !has(points[i + 1]));
}

/**
 * Per-second rates from a cumulative counter (bytes received since boot, say): each point gets
 * (v - previous v) / seconds between them. The first point, a gap, or a counter that went down
 * (the machine restarted) gives null rather than a wrong spike.
 */
export function counterRates(points: Point[]): Point[] {
  const out: Point[] = [];
  let prev: Point | null = null;
  for (const p of points) {
    let rate: number | null = null;
    if (prev && prev.v !== null && p.v !== null && p.t > prev.t && p.v >= prev.v) {
      rate = (p.v - prev.v) / ((p.t - prev.t) / 1000);
    }
    out.push({ t: p.t, v: rate });
    prev = p.v === null ? null : p;
  }
  return out;
}

export const RANGES = {
  '1h': 3600_000,
  '24h': 24 * 3600_000,
  '7d': 7 * 24 * 3600_000,
  '30d': 30 * 24 * 3600_000,
} as const;
export type RangeKey = keyof typeof RANGES;

/** Evenly spaced time ticks over [from, to], labelled by clock time for a day or less, else by date. */
export function timeTicks(from: number, to: number, count = 5): { t: number; label: string }[] {
  if (!(to > from)) return [];
  const span = to - from;
  const out: { t: number; label: string }[] = [];
  const pad = (n: number) => String(n).padStart(2, '0');
  for (let i = 0; i <= count; i += 1) {
    const t = from + (span * i) / count;
    const d = new Date(t);
    const label =
      span <= 24 * 3600_000
        ? `${pad(d.getHours())}:${pad(d.getMinutes())}`
        : `${pad(d.getMonth() + 1)}-${pad(d.getDate())}${span <= 3 * 24 * 3600_000 ? ` ${pad(d.getHours())}h` : ''}`;
    out.push({ t, label });
  }
  return out;
}
