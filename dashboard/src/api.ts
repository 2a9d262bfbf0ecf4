// The one module that knows the server's REST contract: types of every body, one typed function
// per endpoint, and the error handling every page relies on. A change in the API touches this file.

export type Role = 'admin' | 'technician' | 'viewer';

export interface User {
  id: string;
  email: string;
  role: Role;
  created_at: string;
}

export interface LoginResponse {
  token: string;
  expires_at: string;
  user: User;
}

export interface Client {
  id: string;
  name: string;
  notes: string | null;
  created_at: string;
  site_count: number;
  agent_count: number;
}

export interface Site {
  id: string;
  client_id: string;
  client_name: string;
  name: string;
  site_code: string;
  notes: string | null;
  created_at: string;
  agent_count: number;
}

export type AgentStatus = 'online' | 'offline';

export interface Agent {
  id: string;
  site_id: string | null;
  site_name: string | null;
  client_id: string | null;
  client_name: string | null;
  hostname: string;
  device_id: string | null;
  os_type: string | null;
  os_version: string | null;
  arch: string | null;
  version: string | null;
  online: boolean;
  status: AgentStatus;
  last_seen: string | null;
  created_at: string;
}

export interface AgentStats {
  total: number;
  online: number;
  offline: number;
  unassigned?: number;
  by_os: Record<string, number>;
  /** Agents per agent version: the fleet's rollout state. */
  by_version?: Record<string, number>;
}

export interface NetworkInterface {
  name: string;
  mac: string | null;
  addresses: string[];
}

export interface DiskUsage {
  mount: string;
  total_bytes: number;
  used_bytes: number;
}

export interface AgentState {
  agent_id: string;
  network: { hash: string; interfaces: NetworkInterface[]; updated_at: string } | null;
  metrics: {
    /** The agent's report as sent: Unix seconds (the wire format), or RFC 3339. */
    timestamp: number | string;
    cpu_percent: number | null;
    memory_used_bytes: number | null;
    memory_total_bytes: number | null;
    disks: DiskUsage[];
    network: { rx_bytes: number; tx_bytes: number } | null;
  } | null;
}

export interface MetricPoint {
  timestamp: string;
  cpu_percent: number | null;
  memory_used_bytes: number | null;
  memory_total_bytes: number | null;
  disk_used_bytes: number | null;
  disk_total_bytes: number | null;
  network_rx_bytes: number | null;
  network_tx_bytes: number | null;
}

export interface MetricsHistory {
  agent_id: string;
  from: string;
  to: string;
  bucket_seconds: number;
  points: MetricPoint[];
}

export interface WatchdogEvent {
  id: string;
  agent_id: string;
  service: string;
  event: string;
  message: string | null;
  timestamp: string;
}

export const COMMAND_TYPES = ['shell', 'powershell', 'python', 'script'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export const COMMAND_STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

/** A command is finished once it reaches one of these states; it never changes again. */
export function isFinished(status: CommandStatus): boolean {
  return status !== 'pending' && status !== 'running';
}

export interface CommandRecord {
  id: string;
  agent_id: string;
  hostname: string | null;
  command_type: string;
  command: string;
  interpreter?: string | null;
  status: CommandStatus;
  timeout_seconds: number | null;
  elevated: boolean;
  exit_code: number | null;
  stdout: string | null;
  stderr: string | null;
  duration_ms: number | null;
  created_by: string | null;
  created_at: string;
  sent_at: string | null;
  completed_at: string | null;
}

export interface NewCommand {
  command_type: CommandType;
  command: string;
  timeout_seconds?: number;
  elevated?: boolean;
  interpreter?: string;
}

export interface MetricsSummary {
  agents_reporting: number;
  avg_cpu_percent: number | null;
  avg_memory_percent: number | null;
  [key: string]: unknown;
}

export interface AgentFilterQuery {
  client_id?: string;
  site_id?: string;
  status?: AgentStatus;
  search?: string;
}

export interface CommandFilterQuery {
  agent_id?: string;
  status?: CommandStatus;
  since?: string;
  until?: string;
  limit?: number;
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
  createClient(body: { name: string; notes?: string }): Promise<Client>;
  updateClient(id: string, body: { name: string; notes?: string }): Promise<Client>;
  deleteClient(id: string): Promise<void>;
  listClientSites(clientId: string): Promise<Site[]>;

  listSites(): Promise<Site[]>;
  getSite(id: string): Promise<Site>;
  createSite(body: { client_id: string; name: string; notes?: string }): Promise<Site>;
  updateSite(id: string, body: { name: string; notes?: string }): Promise<Site>;
  deleteSite(id: string): Promise<void>;
  regenerateSiteKey(id: string): Promise<Site>;

  listAgents(query?: AgentFilterQuery): Promise<Agent[]>;
  getAgent(id: string): Promise<Agent>;
  deleteAgent(id: string): Promise<void>;
  agentStats(): Promise<AgentStats>;
  unassignedAgents(): Promise<Agent[]>;
  moveAgent(id: string, siteId: string): Promise<Agent>;
  /** Registers an agent by hand; the answer holds its grmm_ key, shown this once only. */
  registerAgent(body: { hostname: string; site_id?: string }): Promise<{ agent: Agent; api_key: string }>;
  agentState(id: string): Promise<AgentState>;
  agentMetrics(id: string, from: Date, to: Date): Promise<MetricsHistory>;
  watchdogEvents(id: string): Promise<WatchdogEvent[]>;

  sendCommand(agentId: string, body: NewCommand): Promise<CommandRecord>;
  listCommands(query?: CommandFilterQuery): Promise<CommandRecord[]>;
  getCommand(id: string): Promise<CommandRecord>;
  cancelCommand(id: string): Promise<CommandRecord>;

  metricsSummary(): Promise<MetricsSummary>;

  listUsers(): Promise<User[]>;
  createUser(body: { email: string; password: string; role: Role }): Promise<User>;
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
