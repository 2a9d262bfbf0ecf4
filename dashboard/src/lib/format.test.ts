import { describe, expect, it } from 'vitest';
import { formatBytes, formatDateTime, formatDuration, formatOs, formatOsVersion, formatPercent, formatRate, formatRelative, humanize, NONE, percentOf } from './format';

describe('formatBytes', () => {
  it('uses binary units with up to three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(10 * 1024 * 1024 + 300_000)).toBe('10.3 MiB');
    expect(formatBytes(17179869184)).toBe('16 GiB');
    expect(formatBytes(512110190592)).toBe('477 GiB');
  });
  it('shows unknown values as a dash', () => {
    expect(formatBytes(null)).toBe(NONE);
    expect(formatBytes(undefined)).toBe(NONE);
    expect(formatBytes(Number.NaN)).toBe(NONE);
  });
  it('formats rates', () => {
    expect(formatRate(2048)).toBe('2 KiB/s');
    expect(formatRate(null)).toBe(NONE);
  });
});

describe('percentages', () => {
  it('rounds and trims', () => {
    expect(formatPercent(12.345)).toBe('12.3%');
    expect(formatPercent(50)).toBe('50%');
    expect(formatPercent(99.96)).toBe('100%');
    expect(formatPercent(null)).toBe(NONE);
  });
  it('computes used of total, refusing a zero total', () => {
    expect(percentOf(1, 4)).toBe(25);
    expect(percentOf(1, 0)).toBeNull();
    expect(percentOf(null, 4)).toBeNull();
  });
});

describe('formatDuration', () => {
  it('picks a readable unit', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(2300)).toBe('2.3 s');
    expect(formatDuration(65_000)).toBe('1 min 5 s');
    expect(formatDuration(120_000)).toBe('2 min');
    expect(formatDuration(3_723_000)).toBe('1 h 2 min');
    expect(formatDuration(null)).toBe(NONE);
  });
});

describe('times', () => {
  it('formats RFC 3339 in local time (UTC in tests)', () => {
    expect(formatDateTime('2026-11-25T08:43:12Z')).toBe('2026-11-25 08:43:12');
    expect(formatDateTime('not a date')).toBe(NONE);
    expect(formatDateTime(null)).toBe(NONE);
  });
  it('reads Unix seconds and milliseconds too', () => {
    expect(formatDateTime(1795000000)).toBe('2026-11-18 11:06:40');
    expect(formatDateTime(1795000000123)).toBe('2026-11-18 11:06:40');
  });
  it('says how long ago', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    expect(formatRelative('2026-11-25T11:59:30Z', now)).toBe('just now');
    expect(formatRelative('2026-11-25T11:55:00Z', now)).toBe('5 min ago');
    expect(formatRelative('2026-11-25T09:00:00Z', now)).toBe('3 h ago');
    expect(formatRelative('2026-11-24T12:00:00Z', now)).toBe('1 day ago');
    expect(formatRelative('2026-11-20T12:00:00Z', now)).toBe('5 days ago');
    expect(formatRelative('2026-11-25T12:05:00Z', now)).toBe('just now');
    expect(formatRelative(null, now)).toBe('never');
  });
});

describe('names', () => {
  it('humanizes states and OS names', () => {
    expect(humanize('timed_out')).toBe('timed out');
    expect(formatOs('linux')).toBe('Linux');
    expect(formatOs('windows')).toBe('Windows');
    expect(formatOs('freebsd')).toBe('Freebsd');
    expect(formatOs('')).toBe('Unknown');
    expect(formatOsVersion('linux', 'Linux (Debian GNU/Linux 12)')).toBe('Linux (Debian GNU/Linux 12)');
    expect(formatOsVersion('windows', '10.0.22631')).toBe('Windows 10.0.22631');
    expect(formatOsVersion('linux', null)).toBe('Linux');
  });
});
