// A hand-made SVG line chart: one or two series over a time range, a value axis with round
// ticks, and a text summary of the latest values for screen readers and quick reading.
import { useId } from 'react';
import { isolatedPoints, linePath, linearScale, timeTicks, valueAxis, type Point } from '../lib/chart';

export interface Series {
  label: string;
  points: Point[];
  /** CSS class giving the stroke colour. */
  className: string;
}

const W = 520;
const H = 190;
const M = { top: 10, right: 10, bottom: 26, left: 72 };

export function LineChart({
  title,
  series,
  from,
  to,
  format,
  fixedMax,
  binary = false,
}: {
  title: string;
  series: Series[];
  from: number;
  to: number;
  format: (v: number) => string;
  fixedMax?: number;
  /** Values are bytes: put the ticks on round binary units. */
  binary?: boolean;
}) {
  const id = useId();
  const axis = valueAxis(series.flatMap((s) => s.points.map((p) => p.v)), { fixedMax, binary });
  const x = linearScale([from, to], [M.left, W - M.right]);
  const y = linearScale([axis.min, axis.max], [H - M.bottom, M.top]);
  const hasData = series.some((s) => s.points.some((p) => p.v !== null));
  const latest = series.map((s) => {
    const last = [...s.points].reverse().find((p) => p.v !== null);
    return `${s.label}: ${last && last.v !== null ? format(last.v) : 'no data'}`;
  });

  return (
    <figure className="chart">
      <figcaption id={`${id}-t`}>
        <span className="chart-title">{title}</span>
        <span className="chart-latest">
          {series.map((s, i) => (
            <span key={s.label} className="legend">
              <span className={`swatch ${s.className}`} aria-hidden="true" />
              {latest[i]}
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-t`}>
        {axis.ticks.map((t) => (
          <g key={t} className="grid">
            <line x1={M.left} x2={W - M.right} y1={y(t)} y2={y(t)} />
            <text x={M.left - 6} y={y(t)} dy="0.32em" textAnchor="end">
              {format(t)}
            </text>
          </g>
        ))}
        {timeTicks(from, to, 4).map((t, i, all) => (
          <text key={t.t} className="tick" x={x(t.t)} y={H - 6} textAnchor={i === 0 ? 'start' : i === all.length - 1 ? 'end' : 'middle'}>
            {t.label}
          </text>
        ))}
        {series.map((s) => (
          <g key={s.label} className={s.className}>
            <path className="line" d={linePath(s.points, x, y)} />
            {isolatedPoints(s.points).map((p) => (
              <circle key={p.t} className="dot" cx={x(p.t)} cy={y(p.v ?? 0)} r={3} />
            ))}
          </g>
        ))}
        {!hasData ? (
          <text className="nodata" x={W / 2} y={H / 2} textAnchor="middle">
            No data in this range
          </text>
        ) : null}
      </svg>
    </figure>
  );
}
