// The one module that knows the server's REST contract: one typed function per endpoint, and the
// error handling every page relies on. The shapes come from the server's OpenAPI document
// (docs/openapi.json) through the generated api-types.ts: `npm run gen:api` after an API change.

import type { components, operations } from './api-types';

type Schemas = components['schemas'];

export type Role = Schemas['Role'];
export type User = Schemas['User'];
export type LoginResponse = Schemas['LoginResponse'];
export type Client = Schemas['Client'];
export type Site = Schemas['Site'];
export type AgentStatus = Schemas['AgentStatus'];
export type Agent = Schemas['Agent'];
export type AgentStats = Schemas['AgentStats'];
export type NetworkInterface = Schemas['NetworkInterface'];
export type DiskUsage = Schemas['DiskUsage'];
export type MetricPoint = Schemas['MetricsPoint'];
export type MetricsHistory = Schemas['MetricsHistory'];
export type WatchdogEvent = Schemas['WatchdogEvent'];
export type CommandRecord = Schemas['Command'];
export type NewCommand = Schemas['CommandBody'];
export type MetricsSummary = Schemas['MetricsSummary'];
export type CommandType = Schemas['CommandType'];
export type CommandStatus = Schemas['CommandStatus'];
export type AgentFilterQuery = NonNullable<operations['get_agents']['parameters']['query']>;
export type CommandFilterQuery = NonNullable<operations['get_commands']['parameters']['query']>;

/**
 * The latest snapshot: the server stores the agent's own reports (the wire protocol's
 * network_state, with the time it arrived, and metrics_report), which the API passes through.
 */
export type AgentState = Omit<Schemas['AgentState'], 'network' | 'metrics'> & {
  network:
    | (Required<Omit<Schemas['NetworkState'], 'interfaces'>> & {
        interfaces: Required<NetworkInterface>[];
        updated_at: string;
      })
    | null;
  metrics:
    | (Required<Omit<Schemas['MetricsReport'], 'timestamp'>> & {
        /** The agent's report as sent: Unix seconds (the wire format), or RFC 3339. */
        timestamp: number | string;
      })
    | null;
};

/** The command types the dashboard offers (claude_task is sent by automation only). */
export const COMMAND_TYPES = ['shell', 'powershell', 'python', 'script'] as const satisfies readonly CommandType[];
export type ConsoleCommandType = (typeof COMMAND_TYPES)[number];

export const COMMAND_STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
] as const satisfies readonly CommandStatus[];

/** A command is finished once it reaches one of these states; it never changes again. */
export function isFinished(status: CommandStatus): boolean {
  return status !== 'pending' && status !== 'running';
}

/** Server-sent events of `GET /api/events`. */
export type LiveEvent =
  | { type: 'agent_status'; data: { agent_id: string; online: boolean; hostname: string } }
  | { type: 'command_updated'; data: { id: string; agent_id: string; status: CommandStatus } };

export const LIVE_EVENT_TYPES: LiveEvent['type'][] = ['agent_status', 'command_updated'];

/**
 * Every failed call becomes an ApiError whose `message` is a sentence a person can read: the
 * server's own `{"error": ...}` text when it sent one, else a description of the status.
 * `status` is 0 when the server could not be reached at all.
 */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'The request was not accepted',
  401: 'You are not signed in',
  403: 'You do not have permission to do this',
  404: 'Not found',
  409: 'This conflicts with existing data',
  413: 'The request is too large',
  422: 'Some of the values are not valid',
  429: 'Too many requests: wait a moment and try again',
  500: 'The server failed to handle the request',
  502: 'The server is unreachable (bad gateway)',
  503: 'The server is unavailable',
  504: 'The server took too long to answer',
};

/** A readable description of an HTTP status for when the server sent no message of its own. */
export function describeStatus(status: number): string {
  return STATUS_TEXT[status] ?? `The server answered with status ${status}`;
}

/** Turns a failed response's body into the message shown to the user. */
export function errorMessageFromBody(status: number, body: string): string {
  const fallback = describeStatus(status);
  const text = body.trim();
  if (!text) return fallback;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') {
      const err = (parsed as Record<string, unknown>).error ?? (parsed as Record<string, unknown>).message;
      if (typeof err === 'string' && err.trim()) {
        // For rate limiting the server's words may lack the advice; keep both.
        return status === 429 && !/try again|wait/i.test(err) ? `${err} (${fallback.toLowerCase()})` : err;
      }
    }
    return fallback; // JSON without a message: nothing more to say than the status
  } catch {
    // Not JSON: a proxy or HTML error page. Its text is rarely meant for people.
  }
  if (text.length <= 200 && !text.startsWith('<')) return `${fallback}: ${text}`;
  return fallback;
}

type Fetch = typeof fetch;

export interface ApiOptions {
  /** Base URL the /api paths are relative to; '' means same origin. */
  baseUrl?: string;
  fetchImpl?: Fetch;
  getToken: () => string | null;
  /** Called when an authenticated request answers 401: the session is over. */
  onUnauthorized?: () => void;
}

export interface ApiClient {
  login(email: string, password: string): Promise<LoginResponse>;
  me(): Promise<User>;

  listClients(): Promise<Client[]>;
  getClient(id: string): Promise<Client>;
  createClient(body: Schemas['ClientBody']): Promise<Client>;
  updateClient(id: string, body: Schemas['ClientBody']): Promise<Client>;
  deleteClient(id: string): Promise<void>;
  listClientSites(clientId: string): Promise<Site[]>;

  listSites(): Promise<Site[]>;
  getSite(id: string): Promise<Site>;
  createSite(body: Schemas['NewSiteBody']): Promise<Site>;
  updateSite(id: string, body: Schemas['SiteBody']): Promise<Site>;
  deleteSite(id: string): Promise<void>;
  regenerateSiteKey(id: string): Promise<Site>;

  listAgents(query?: AgentFilterQuery): Promise<Agent[]>;
  getAgent(id: string): Promise<Agent>;
  deleteAgent(id: string): Promise<void>;
  agentStats(): Promise<AgentStats>;
  unassignedAgents(): Promise<Agent[]>;
  moveAgent(id: string, siteId: string): Promise<Agent>;
  /** Registers an agent by hand; the answer holds its grmm_ key, shown this once only. */
  registerAgent(body: Schemas['RegisterAgentBody']): Promise<Schemas['RegisteredAgent']>;
  agentState(id: string): Promise<AgentState>;
  agentMetrics(id: string, from: Date, to: Date): Promise<MetricsHistory>;
  watchdogEvents(id: string): Promise<WatchdogEvent[]>;

  sendCommand(agentId: string, body: NewCommand): Promise<CommandRecord>;
  listCommands(query?: CommandFilterQuery): Promise<CommandRecord[]>;
  getCommand(id: string): Promise<CommandRecord>;
  cancelCommand(id: string): Promise<CommandRecord>;

  metricsSummary(): Promise<MetricsSummary>;

  listUsers(): Promise<User[]>;
  createUser(body: Schemas['NewUserRequest']): Promise<User>;
  deleteUser(id: string): Promise<void>;

  /** URL of the event stream, with the token in the query (EventSource sends no headers). */
  eventsUrl(): string;
}

/** `?a=1&b=2` from the defined, non-empty values of `params`; '' when none. */
export function queryString(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function createApi(options: ApiOptions): ApiClient {
  const base = options.baseUrl ?? '';
  const doFetch: Fetch = options.fetchImpl ?? ((...args) => fetch(...args));

  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    { authenticated = true }: { authenticated?: boolean } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (authenticated) {
      const token = options.getToken();
      if (token) headers.Authorization = `Bearer ${token}`;
    }
    let response: Response;
    try {
      response = await doFetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const detail = err instanceof Error && err.message ? ` (${err.message})` : '';
      throw new ApiError(0, `Cannot reach the server: check the connection and try again${detail}`);
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      if (response.status === 401 && authenticated) options.onUnauthorized?.();
      throw new ApiError(response.status, errorMessageFromBody(response.status, text));
    }
    if (response.status === 204 || !text.trim()) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, 'The server sent an answer that could not be read (not JSON)');
    }
  }

  const get = <T>(path: string) => request<T>('GET', path);
  const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body ?? {});
  const put = <T>(path: string, body: unknown) => request<T>('PUT', path, body);
  const del = (path: string) => request<void>('DELETE', path);
  const id = encodeURIComponent;

  return {
    login: (email, password) =>
      request<LoginResponse>('POST', '/api/auth/login', { email, password }, { authenticated: false }),
    me: () => get('/api/auth/me'),

    listClients: () => get('/api/clients'),
    getClient: (c) => get(`/api/clients/${id(c)}`),
    createClient: (body) => post('/api/clients', body),
    updateClient: (c, body) => put(`/api/clients/${id(c)}`, body),
    deleteClient: (c) => del(`/api/clients/${id(c)}`),
    listClientSites: (c) => get(`/api/clients/${id(c)}/sites`),

    listSites: () => get('/api/sites'),
    getSite: (s) => get(`/api/sites/${id(s)}`),
    createSite: (body) => post('/api/sites', body),
    updateSite: (s, body) => put(`/api/sites/${id(s)}`, body),
    deleteSite: (s) => del(`/api/sites/${id(s)}`),
    regenerateSiteKey: (s) => post(`/api/sites/${id(s)}/regenerate-key`),

    listAgents: (query = {}) => get(`/api/agents${queryString({ ...query })}`),
    getAgent: (a) => get(`/api/agents/${id(a)}`),
    deleteAgent: (a) => del(`/api/agents/${id(a)}`),
    agentStats: () => get('/api/agents/stats'),
    unassignedAgents: () => get('/api/agents/unassigned'),
    moveAgent: (a, siteId) => post(`/api/agents/${id(a)}/move`, { site_id: siteId }),
    registerAgent: (body) => post('/api/agents', body),
    agentState: (a) => get(`/api/agents/${id(a)}/state`),
    agentMetrics: (a, from, to) =>
      get(`/api/agents/${id(a)}/metrics${queryString({ from: from.toISOString(), to: to.toISOString() })}`),
    watchdogEvents: (a) => get(`/api/agents/${id(a)}/watchdog-events`),

    sendCommand: (a, body) => post(`/api/agents/${id(a)}/command`, body),
    listCommands: (query = {}) => get(`/api/commands${queryString({ ...query })}`),
    getCommand: (c) => get(`/api/commands/${id(c)}`),
    cancelCommand: (c) => post(`/api/commands/${id(c)}/cancel`),

    metricsSummary: () => get('/api/metrics/summary'),

    listUsers: () => get('/api/users'),
    createUser: (body) => post('/api/users', body),
    deleteUser: (u) => del(`/api/users/${id(u)}`),

    eventsUrl: () => `${base}/api/events${queryString({ access_token: options.getToken() })}`,
  };
}
