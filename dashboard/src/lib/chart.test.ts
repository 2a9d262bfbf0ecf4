import { describe, expect, it } from 'vitest';
import { counterRates, isolatedPoints, linePath, linearScale, niceStep, timeTicks, valueAxis } from './chart';

describe('linearScale', () => {
  it('maps the domain onto the range, inverted ranges included', () => {
    const y = linearScale([0, 100], [170, 10]);
    expect(y(0)).toBe(170);
    expect(y(100)).toBe(10);
    expect(y(50)).toBe(90);
  });
  it('maps an empty domain to the middle instead of dividing by zero', () => {
    expect(linearScale([5, 5], [0, 100])(5)).toBe(50);
  });
});

describe('niceStep and valueAxis', () => {
  it('rounds steps to 1, 2, 2.5, 5 times a power of ten', () => {
    expect(niceStep(100, 4)).toBe(25);
    expect(niceStep(7, 4)).toBe(2);
    expect(niceStep(0.3, 4)).toBeCloseTo(0.1);
    expect(niceStep(3000, 4)).toBe(1000);
    expect(niceStep(0, 4)).toBe(1);
  });
  it('keeps percentages on 0..100', () => {
    expect(valueAxis([3, 12.5, null], { fixedMax: 100 })).toEqual({ min: 0, max: 100, ticks: [0, 25, 50, 75, 100] });
  });
  it('grows past a fixed max when the data does', () => {
    const a = valueAxis([130], { fixedMax: 100 });
    expect(a.max).toBeGreaterThanOrEqual(130);
  });
  it('ends on a round number at or above the data', () => {
    const a = valueAxis([0, 1234]);
    expect(a.min).toBe(0);
    expect(a.max).toBe(1500);
    expect(a.ticks).toEqual([0, 500, 1000, 1500]);
  });
  it('rounds byte values in binary units when asked', () => {
    const a = valueAxis([0, 60_000], { binary: true });
    expect(a.ticks).toEqual([0, 20 * 1024, 40 * 1024, 60 * 1024]);
    expect(valueAxis([0, 500], { binary: true }).ticks).toEqual([0, 200, 400, 600]);
    expect(valueAxis([], { binary: true }).ticks).toEqual([0, 1]);
  });
  it('handles no data and all-zero data', () => {
    expect(valueAxis([]).max).toBeGreaterThan(0);
    expect(valueAxis([0, 0]).max).toBeGreaterThan(0);
  });
});

describe('linePath', () => {
  const x = linearScale([0, 10], [0, 100]);
  const y = linearScale([0, 10], [100, 0]);
  it('draws through the points', () => {
    expect(linePath([{ t: 0, v: 0 }, { t: 5, v: 5 }, { t: 10, v: 10 }], x, y)).toBe('M0,100 L50,50 L100,0');
  });
  it('breaks the line at missing values', () => {
    expect(linePath([{ t: 0, v: 1 }, { t: 2, v: null }, { t: 4, v: 2 }, { t: 6, v: 3 }], x, y)).toBe('M0,90 M40,80 L60,70');
  });
  it('is empty without values', () => {
    expect(linePath([{ t: 0, v: null }], x, y)).toBe('');
  });
});

describe('isolatedPoints', () => {
  it('finds the points a line cannot draw', () => {
    expect(isolatedPoints([{ t: 0, v: 1 }])).toEqual([{ t: 0, v: 1 }]);
    expect(isolatedPoints([{ t: 0, v: 1 }, { t: 1, v: null }, { t: 2, v: 2 }, { t: 3, v: 3 }])).toEqual([{ t: 0, v: 1 }]);
    expect(isolatedPoints([{ t: 0, v: null }])).toEqual([]);
  });
});

describe('counterRates', () => {
  it('turns a cumulative counter into per-second rates', () => {
    const r = counterRates([
      { t: 0, v: 1000 },
      { t: 10_000, v: 6000 },
      { t: 20_000, v: 6000 },
    ]);
    expect(r.map((p) => p.v)).toEqual([null, 500, 0]);
  });
  it('gives no rate across a reset or a gap', () => {
    const r = counterRates([
      { t: 0, v: 5000 },
      { t: 10_000, v: 100 },
      { t: 20_000, v: null },
      { t: 30_000, v: 300 },
      { t: 40_000, v: 1300 },
    ]);
    expect(r.map((p) => p.v)).toEqual([null, null, null, null, 100]);
  });
});

describe('timeTicks', () => {
  it('labels a short range by clock time and a long one by date', () => {
    const from = Date.parse('2026-11-25T08:00:00Z');
    expect(timeTicks(from, from + 3600_000, 4).map((t) => t.label)).toEqual(['08:00', '08:15', '08:30', '08:45', '09:00']);
    expect(timeTicks(from, from + 30 * 86400_000, 2).map((t) => t.label)).toEqual(['11-25', '12-10', '12-25']);
    expect(timeTicks(from, from, 4)).toEqual([]);
  });
});
