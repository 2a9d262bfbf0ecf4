import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApi, createCall, describeStatus, errorMessageFromBody, fillPath, queryString } from './api';

function fakeFetch(status: number, body: string | object, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return vi.fn(async (_url: string | URL | Request, _init?: RequestInit) => new Response(status === 204 ? null : text, { status, headers }));
}

function apiWith(fetchImpl: ReturnType<typeof fakeFetch> | typeof fetch, token: string | null = 'tok', onUnauthorized = vi.fn()) {
  return { api: createApi({ fetchImpl: fetchImpl as typeof fetch, getToken: () => token, onUnauthorized }), onUnauthorized };
}

describe('errorMessageFromBody', () => {
  it("uses the server's error text", () => {
    expect(errorMessageFromBody(400, '{"error":"name must not be empty"}')).toBe('name must not be empty');
  });
  it('describes the status when the body is empty or unreadable', () => {
    expect(errorMessageFromBody(404, '')).toBe('Not found');
    expect(errorMessageFromBody(502, '<html><body>Bad Gateway</body></html>')).toBe(describeStatus(502));
    expect(errorMessageFromBody(418, '{}')).toBe('The server answered with status 418');
  });
  it('keeps short plain-text bodies after the description', () => {
    expect(errorMessageFromBody(500, 'database is locked')).toBe('The server failed to handle the request: database is locked');
  });
  it('adds advice to a terse rate-limit message', () => {
    expect(errorMessageFromBody(429, '{"error":"rate limited"}')).toMatch(/^rate limited \(too many requests: wait a moment/);
    expect(errorMessageFromBody(429, '{"error":"slow down, try again in 5 s"}')).toBe('slow down, try again in 5 s');
  });
});

describe('createApi', () => {
  it('sends the bearer token and JSON body, and parses the answer', async () => {
    const f = fakeFetch(200, { id: 'c1', name: 'Acme' });
    const { api } = apiWith(f);
    const c = await api.createClient({ name: 'Acme' });
    expect(c).toEqual({ id: 'c1', name: 'Acme' });
    const [url, init] = f.mock.calls[0];
    expect(url).toBe('/api/clients');
    expect(init?.method).toBe('POST');
    expect((init?.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    expect(JSON.parse(init?.body as string)).toEqual({ name: 'Acme' });
  });

  it('does not send a token to login, and a 401 there is not a session expiry', async () => {
    const f = fakeFetch(401, { error: 'invalid email or password' });
    const { api, onUnauthorized } = apiWith(f);
    await expect(api.login('a@example.com', 'x')).rejects.toMatchObject({ status: 401, message: 'invalid email or password' });
    expect((f.mock.calls[0][1]?.headers as Record<string, string>).Authorization).toBeUndefined();
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('reports a 401 on an authenticated call as the end of the session', async () => {
    const { api, onUnauthorized } = apiWith(fakeFetch(401, { error: 'token expired' }));
    const err = await api.listAgents().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(401);
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('turns a network failure into a readable error with status 0', async () => {
    const f = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const { api } = apiWith(f as unknown as typeof fetch);
    await expect(api.agentStats()).rejects.toMatchObject({ status: 0, message: expect.stringMatching(/^Cannot reach the server.*Failed to fetch/) });
  });

  it('says so when a success answer is not JSON', async () => {
    const { api } = apiWith(fakeFetch(200, '<html>index</html>'));
    await expect(api.listClients()).rejects.toMatchObject({ message: expect.stringMatching(/could not be read/) });
  });

  it('accepts empty answers (204) for deletes', async () => {
    const f = fakeFetch(204, '');
    const { api } = apiWith(f);
    await expect(api.deleteSite('s 1')).resolves.toBeUndefined();
    expect(f.mock.calls[0][0]).toBe('/api/sites/s%201');
    expect(f.mock.calls[0][1]?.method).toBe('DELETE');
  });

  it('passes filters as query parameters and leaves out empty ones', async () => {
    const f = fakeFetch(200, []);
    const { api } = apiWith(f);
    await api.listAgents({ client_id: 'c1', search: '', status: 'online' });
    expect(f.mock.calls[0][0]).toBe('/api/agents?client_id=c1&status=online');
    await api.listCommands({ agent_id: 'a1', limit: 50 });
    expect(f.mock.calls[1][0]).toBe('/api/commands?agent_id=a1&limit=50');
    await api.agentMetrics('a1', new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T01:00:00Z'));
    expect(f.mock.calls[2][0]).toBe('/api/agents/a1/metrics?from=2026-01-01T00%3A00%3A00.000Z&to=2026-01-01T01%3A00%3A00.000Z');
  });

  it('sends commands with the snake_case fields of the contract', async () => {
    const f = fakeFetch(200, { id: 'cmd1', status: 'pending' });
    const { api } = apiWith(f);
    await api.sendCommand('a1', { command_type: 'shell', command: 'echo hi', timeout_seconds: 30, elevated: false });
    expect(f.mock.calls[0][0]).toBe('/api/agents/a1/command');
    expect(JSON.parse(f.mock.calls[0][1]?.body as string)).toEqual({ command_type: 'shell', command: 'echo hi', timeout_seconds: 30, elevated: false });
  });

  it('builds the event stream URL with a ticket, never the token', () => {
    const { api } = apiWith(fakeFetch(200, {}), 'a.b.c');
    expect(api.eventsUrl('t 1')).toBe('/api/events?ticket=t+1');
  });

  it('signs out on the server and fetches event tickets with the token', async () => {
    const f = fakeFetch(204, '');
    const { api } = apiWith(f, 'a.b.c');
    await api.logout();
    expect(f.mock.calls[0][0]).toBe('/api/auth/logout');
    expect(f.mock.calls[0][1]?.method).toBe('POST');
    expect((f.mock.calls[0][1]?.headers as Record<string, string>).Authorization).toBe('Bearer a.b.c');
  });

  it('shows a 403 and a 429 in words', async () => {
    const { api: a1 } = apiWith(fakeFetch(403, ''));
    await expect(a1.listUsers()).rejects.toMatchObject({ status: 403, message: 'You do not have permission to do this' });
    const { api: a2 } = apiWith(fakeFetch(429, ''));
    await expect(a2.sendCommand('a', { command_type: 'shell', command: 'x' })).rejects.toMatchObject({ status: 429, message: expect.stringMatching(/Too many requests/) });
  });
});

describe('typed calls', () => {
  it('substitutes and encodes path parameters', async () => {
    const f = fakeFetch(200, {});
    const { api } = apiWith(f);
    await api.getClient('a/b?c#d');
    expect(f.mock.calls[0][0]).toBe('/api/clients/a%2Fb%3Fc%23d');
    await api.moveAgent('x y', 's1');
    expect(f.mock.calls[1][0]).toBe('/api/agents/x%20y/move');
    expect(JSON.parse(f.mock.calls[1][1]?.body as string)).toEqual({ site_id: 's1' });
    await api.cancelCommand('c%1');
    expect(f.mock.calls[2][0]).toBe('/api/commands/c%251/cancel');
    expect(f.mock.calls[2][1]?.method).toBe('POST');
    expect(f.mock.calls[2][1]?.body).toBeUndefined(); // the operation takes no body

    const call = createCall({ baseUrl: 'http://h:1', fetchImpl: f as typeof fetch, getToken: () => null });
    await call('get', '/api/agents/{id}/metrics', { params: { id: 'é' }, query: { from: '1', to: undefined } });
    expect(f.mock.calls[3][0]).toBe('http://h:1/api/agents/%C3%A9/metrics?from=1');
  });

  it('refuses a template whose parameter is missing instead of calling a wrong URL', () => {
    expect(() => fillPath('/api/sites/{id}', {})).toThrow(/missing path parameter id/);
    expect(fillPath('/api/sites/{id}/regenerate-key', { id: '../x' })).toBe('/api/sites/..%2Fx/regenerate-key');
  });

  it('is checked against the document by the compiler (tsc --noEmit)', () => {
    // Never run: each line below must fail to compile, or tsc reports an unused directive.
    const compileTimeChecks = (call: ReturnType<typeof createCall>) => [
      // @ts-expect-error no GET at this path
      call('get', '/api/agents/{id}/command', { params: { id: 'a' } }),
      // @ts-expect-error the path parameter is required
      call('get', '/api/clients/{id}'),
      // @ts-expect-error the path parameter has another name
      call('get', '/api/clients/{id}', { params: { client: 'c' } }),
      // @ts-expect-error the body must be a ClientBody
      call('post', '/api/clients', { body: { title: 'Acme' } }),
      // @ts-expect-error the body is required
      call('post', '/api/clients'),
      // @ts-expect-error not an agent status of the document
      call('get', '/api/agents', { query: { status: 'asleep' } }),
      // @ts-expect-error no such path
      call('get', '/api/client'),
      async () => {
        // @ts-expect-error a client is not a site
        const site: import('./api').Site = await call('get', '/api/clients/{id}', { params: { id: 'c' } });
        const gone: void = await call('delete', '/api/users/{id}', { params: { id: 'u' } });
        return [site, gone];
      },
    ];
    expect(typeof compileTimeChecks).toBe('function');
  });
});

describe('queryString', () => {
  it('is empty with nothing set', () => {
    expect(queryString({ a: undefined, b: '', c: null })).toBe('');
  });
});

describe('two-factor sign-in', () => {
  it('sends a six-digit code as totp_code and anything else as a recovery code', async () => {
    const { secondFactorFields } = await import('./api');
    expect(secondFactorFields(undefined)).toEqual({});
    expect(secondFactorFields(' 123 456 ')).toEqual({ totp_code: '123456' });
    expect(secondFactorFields('abcde-fghjk')).toEqual({ recovery_code: 'abcde-fghjk' });
  });
  it("marks the server's request for the second factor on the error", async () => {
    const f = fakeFetch(401, { error: 'enter the code', two_factor_required: true });
    const { api } = apiWith(f);
    const err = await api.login('a@example.com', 'pw').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).twoFactorRequired).toBe(true);
    expect((err as ApiError).message).toBe('enter the code');
    const plain = await apiWith(fakeFetch(401, { error: 'wrong email or password' })).api.login('a@example.com', 'pw').catch((e: unknown) => e);
    expect((plain as ApiError).twoFactorRequired).toBe(false);
  });
});
