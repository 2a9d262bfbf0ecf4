import { describe, expect, it } from 'vitest';
import { href, matchPath, parseHash } from './router';

describe('router', () => {
  it('parses hashes with queries', () => {
    const l = parseHash('#/console?agents=a,b');
    expect(l.path).toBe('/console');
    expect(l.query.get('agents')).toBe('a,b');
    expect(parseHash('').path).toBe('/');
    expect(parseHash('#/clients/').path).toBe('/clients');
  });
  it('matches patterns with parameters', () => {
    expect(matchPath('/agents/:id', '/agents/42')).toEqual({ id: '42' });
    expect(matchPath('/agents/:id', '/agents')).toBeNull();
    expect(matchPath('/', '/')).toEqual({});
    expect(matchPath('/sites/:id', '/agents/1')).toBeNull();
  });
  it('builds hrefs, skipping empty query values', () => {
    expect(href('/console', { agents: 'x', other: undefined })).toBe('#/console?agents=x');
    expect(href('/')).toBe('#/');
  });
});
