import { describe, expect, it } from 'vitest';
import type { Release } from '../api';
import { publishCommand, publishedBuild, updateStateLabel } from './releases';

const release = (over: Partial<Release>): Release => ({
  id: 'r',
  version: '0.2.0',
  os: 'linux',
  arch: 'x86_64',
  file_name: 'gururmm-agent-linux-x86_64-0.2.0',
  stable_file_name: 'gururmm-agent-linux-x86_64',
  sha256: 'ab',
  size: 1,
  signature: 's',
  created_at: '2026-01-01T00:00:00Z',
  ...over,
});

describe('published builds', () => {
  it('finds the build the install command fetches, per OS', () => {
    const list = [release({ stable_file_name: null, version: '0.1.0' }), release({}), release({ os: 'linux', arch: 'aarch64' })];
    expect(publishedBuild(list, 'linux')?.version).toBe('0.2.0');
    expect(publishedBuild(list, 'windows')).toBeUndefined();
    expect(publishedBuild([release({ stable_file_name: null })], 'linux')).toBeUndefined();
  });

  it('says how to publish one', () => {
    expect(publishCommand('windows')).toContain('--os windows --arch x86_64');
    expect(updateStateLabel('rolled_back')).toBe('rolled back');
  });
});
