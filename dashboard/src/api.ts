// The one module that knows the server's REST contract: one typed function per endpoint, and the
// error handling every page relies on. The shapes come from the server's OpenAPI document
// (docs/openapi.json) through the generated api-types.ts (`npm run gen:api` after an API change),
// and every call goes through `call`, whose paths, parameters, bodies and answers are read from
// that file's `paths`: a call the document does not allow does not compile.

import type { components, operations, paths } from './api-types';

type Schemas = components['schemas'];

export type Role = Schemas['Role'];
export type User = Schemas['User'];
export type LoginResponse = Schemas['LoginResponse'];
/** One of the signed-in user's server-side sessions. */
export type AuthSession = Schemas['Session'];
export type AuthStatus = Schemas['AuthStatus'];
export type AuthProviders = Schemas['AuthProviders'];
export type Client = Schemas['Client'];
export type Site = Schemas['Site'];
export type AgentStatus = Schemas['AgentStatus'];
/** `capabilities`: what the agent said it can do when it connected (`live_output`, `claude_task`). */
export type Agent = Schemas['Agent'];
export type EnrollmentToken = Schemas['EnrollmentToken'];
export type NewEnrollmentToken = Schemas['NewEnrollmentToken'];
export type AgentStats = Schemas['AgentStats'];
export type NetworkInterface = Schemas['NetworkInterface'];
export type DiskUsage = Schemas['DiskUsage'];
export type MetricPoint = Schemas['MetricsPoint'];
export type MetricsHistory = Schemas['MetricsHistory'];
export type WatchdogEvent = Schemas['WatchdogEvent'];
/**
 * A stored command. `output_preview`: stdout/stderr hold only their first 500 characters (list
 * endpoints), `stdout_length`/`stderr_length` give the whole length; `live_seq`: for a running
 * command read by id, the highest streamed piece included in stdout/stderr.
 */
export type CommandRecord = Schemas['Command'];
/** `working_directory` and `context_files` are for `claude_task` only. */
export type NewCommand = Schemas['CommandBody'];
export type MetricsSummary = Schemas['MetricsSummary'];
export type CommandType = Schemas['CommandType'];
export type CommandStatus = Schemas['CommandStatus'];
export type Release = Schemas['Release'];
export type Rollout = Schemas['Rollout'];
export type RolloutBody = Schemas['RolloutBody'];
export type AgentUpdate = Schemas['AgentUpdate'];
export type VersionCount = Schemas['VersionCount'];
export type Severity = Schemas['Severity'];
export type Scope = Schemas['Scope'];
export type ScopeKind = Schemas['ScopeKind'];
export type Alert = Schemas['Alert'];
export type AlertStatus = Schemas['AlertStatus'];
export type AlertSummary = Schemas['AlertSummary'];
export type AlertRule = Schemas['AlertRule'];
export type AlertRuleBody = Schemas['AlertRuleBody'];
export type RuleKind = Schemas['RuleKind'];
export type MaintenanceWindow = Schemas['MaintenanceWindow'];
export type MaintenanceWindowBody = Schemas['MaintenanceWindowBody'];
export type NotificationChannel = Schemas['NotificationChannel'];
export type ChannelBody = Schemas['ChannelBody'];
export type ChannelKind = Schemas['ChannelKind'];
export type NotificationRoute = Schemas['NotificationRoute'];
export type RouteBody = Schemas['RouteBody'];
export type NotificationDelivery = Schemas['NotificationDelivery'];
export type Policy = Schemas['NamedPolicy'];
export type PolicyBody = Schemas['NamedPolicyBody'];
export type PolicySettings = Schemas['PolicySettings'];
export type PolicyService = Schemas['PolicyService'];
export type PolicyAssignment = Schemas['PolicyAssignment'];
export type EffectivePolicy = Schemas['EffectivePolicy'];
/** What one version of a script holds. */
export type ScriptContent = Omit<Schemas['ScriptContent'], 'parameters'> & { parameters?: ScriptParameter[] };
export type Script = Omit<Schemas['Script'], 'content'> & { content: ScriptContent };
export type ScriptKind = Schemas['ScriptKind'];
export type TargetOs = Schemas['TargetOs'];
export type ParameterKind = Schemas['ParameterKind'];
/** `default` is a string, number or boolean as `kind` says (the document types it as any JSON). */
export type ScriptParameter = Omit<Schemas['ScriptParameter'], 'default'> & { default?: ParamValue | null };
/** A script as created, edited, exported and imported (flat: the content's fields beside the name). */
export type ScriptDefinition = Omit<Schemas['ScriptDefinition'], 'parameters'> & { parameters?: ScriptParameter[] };
export type ScriptVersion = Omit<Schemas['ScriptVersion'], 'content'> & { content: ScriptContent };
export type ScriptExport = Omit<Schemas['ScriptExport'], 'scripts'> & { scripts: ScriptDefinition[] };
export type ScriptImported = Schemas['ScriptImported'];
export type ScriptQuery = NonNullable<operations['get_scripts']['parameters']['query']>;
/** A script parameter's value as a run sends it. */
export type ParamValue = string | number | boolean;
export type Job = Schemas['Job'];
export type JobAgent = Schemas['JobAgent'];
export type JobCounts = Schemas['JobCounts'];
export type JobStatus = Schemas['JobStatus'];
export type JobTarget = Schemas['JobTarget'];
/** `parameters`: values by name, typed as the script's parameters say (the document types it as any JSON). */
export type JobBody = Omit<Schemas['JobBody'], 'parameters'> & { parameters?: Record<string, ParamValue> | null };
export type JobQuery = NonNullable<operations['get_jobs']['parameters']['query']>;
export type AgentFilterQuery = NonNullable<operations['get_agents']['parameters']['query']>;
export type AlertQuery = NonNullable<operations['get_alerts']['parameters']['query']>;
export type DeliveryQuery = NonNullable<operations['get_notification_deliveries']['parameters']['query']>;
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

/** The command types the console offers; claude_task only for agents with that capability. */
export const COMMAND_TYPES = ['shell', 'powershell', 'python', 'script', 'claude_task'] as const satisfies readonly CommandType[];
export type ConsoleCommandType = (typeof COMMAND_TYPES)[number];

export const COMMAND_STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
  'expired',
] as const satisfies readonly CommandStatus[];

/** A command is finished once it reaches one of these states; it never changes again. */
export function isFinished(status: CommandStatus): boolean {
  return status !== 'pending' && status !== 'running';
}

/** Server-sent events of `GET /api/events`. */
export type LiveEvent =
  | { type: 'agent_status'; data: { agent_id: string; online: boolean; hostname: string } }
  | { type: 'command_updated'; data: { id: string; agent_id: string; status: CommandStatus } }
  | { type: 'command_output'; data: CommandOutputPiece }
  | { type: 'agent_update'; data: { agent_id: string; update_id: string; to_version: string; status: string } }
  | { type: 'alert'; data: { id: string; agent_id: string; status: AlertStatus; severity: Severity } }
  /** A job started or was cancelled; its commands' progress comes as `command_updated`. */
  | { type: 'job_updated'; data: { id: string } };

export const LIVE_EVENT_TYPES: LiveEvent['type'][] = ['agent_status', 'command_updated', 'command_output', 'agent_update', 'alert', 'job_updated'];

/** A piece of a running command's output; `seq` counts from 0 per command over both streams. */
export interface CommandOutputPiece {
  id: string;
  agent_id: string;
  stream: 'stdout' | 'stderr';
  seq: number;
  data: string;
}

/**
 * Every failed call becomes an ApiError whose `message` is a sentence a person can read: the
 * server's own `{"error": ...}` text when it sent one, else a description of the status.
 * `status` is 0 when the server could not be reached at all.
 */
export class ApiError extends Error {
  readonly status: number;
  /** Sign-in only: the password was right and the account's second factor is needed. */
  readonly twoFactorRequired: boolean;
  constructor(status: number, message: string, twoFactorRequired = false) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.twoFactorRequired = twoFactorRequired;
  }
}

/** Whether a failed answer's body carries the server's `two_factor_required` flag. */
function asksForSecondFactor(body: string): boolean {
  try {
    const parsed: unknown = JSON.parse(body);
    return !!parsed && typeof parsed === 'object' && (parsed as Record<string, unknown>).two_factor_required === true;
  } catch {
    return false;
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
  /** `secondFactor`: a code from the authenticator app, or a recovery code. */
  login(email: string, password: string, secondFactor?: string): Promise<LoginResponse>;
  /** Ends this session on the server. */
  logout(): Promise<void>;
  me(): Promise<User>;
  /** Whether the server has no user yet, with how to create the first administrator. */
  authStatus(): Promise<AuthStatus>;
  /** Single sign-on, when the server has it configured. */
  authProviders(): Promise<AuthProviders>;
  /** The one-time code from the single sign-on redirect, for a session. */
  oidcExchange(code: string): Promise<LoginResponse>;
  /** Ends every session of the user; the answer is a fresh session for this browser. */
  changePassword(body: Schemas['ChangePasswordRequest']): Promise<LoginResponse>;
  listSessions(): Promise<AuthSession[]>;
  endSession(id: string): Promise<void>;
  /** A single-use ticket (about 30 s) for opening the event stream. */
  eventTicket(): Promise<Schemas['EventTicket']>;

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
  /** A grmt_ enrollment token for the site; the answer holds its secret, shown this once only. */
  createSiteToken(siteId: string, body: Schemas['NewTokenBody']): Promise<NewEnrollmentToken>;
  listSiteTokens(siteId: string): Promise<EnrollmentToken[]>;
  revokeSiteToken(siteId: string, tokenId: string): Promise<void>;

  listAgents(query?: AgentFilterQuery): Promise<Agent[]>;
  getAgent(id: string): Promise<Agent>;
  deleteAgent(id: string): Promise<void>;
  agentStats(): Promise<AgentStats>;
  unassignedAgents(): Promise<Agent[]>;
  moveAgent(id: string, siteId: string): Promise<Agent>;
  /** A record waiting for approval takes the place of the agent it claims to be. */
  approveAgent(id: string): Promise<Agent>;
  rejectAgent(id: string): Promise<Agent>;
  /** Registers an agent by hand; the answer holds its grmm_ key, shown this once only. */
  registerAgent(body: Schemas['RegisterAgentBody']): Promise<Schemas['RegisteredAgent']>;
  agentState(id: string): Promise<AgentState>;
  agentMetrics(id: string, from: Date, to: Date): Promise<MetricsHistory>;
  watchdogEvents(id: string): Promise<WatchdogEvent[]>;
  agentUpdates(id: string): Promise<AgentUpdate[]>;
  /** A published version for one agent; an older one than it runs is a downgrade. */
  requestAgentUpdate(id: string, version: string): Promise<AgentUpdate>;
  retryAgentUpdate(id: string): Promise<AgentUpdate>;
  agentVersions(): Promise<VersionCount[]>;
  listReleases(): Promise<Release[]>;
  listRollouts(): Promise<Rollout[]>;
  setRollout(os: string, arch: string, body: RolloutBody): Promise<Rollout>;

  sendCommand(agentId: string, body: NewCommand): Promise<CommandRecord>;
  listCommands(query?: CommandFilterQuery): Promise<CommandRecord[]>;
  getCommand(id: string): Promise<CommandRecord>;
  cancelCommand(id: string): Promise<CommandRecord>;

  metricsSummary(): Promise<MetricsSummary>;

  listScripts(query?: ScriptQuery): Promise<Script[]>;
  getScript(id: string): Promise<Script>;
  createScript(body: ScriptDefinition): Promise<Script>;
  /** Saved as the script's next version. */
  updateScript(id: string, body: ScriptDefinition): Promise<Script>;
  deleteScript(id: string): Promise<void>;
  /** Newest first. */
  scriptVersions(id: string): Promise<ScriptVersion[]>;
  exportScripts(): Promise<ScriptExport>;
  importScripts(body: ScriptExport): Promise<ScriptImported>;

  createJob(body: JobBody): Promise<Job>;
  listJobs(query?: JobQuery): Promise<Job[]>;
  getJob(id: string): Promise<Job>;
  jobAgents(id: string): Promise<JobAgent[]>;
  cancelJob(id: string): Promise<Job>;
  /** A new job on the agents where this one failed, timed out or expired. */
  rerunJob(id: string): Promise<Job>;

  listAlerts(query?: AlertQuery): Promise<Alert[]>;
  alertSummary(): Promise<AlertSummary>;
  acknowledgeAlert(id: string, note?: string): Promise<Alert>;
  resolveAlert(id: string, note?: string): Promise<Alert>;
  listAlertRules(): Promise<AlertRule[]>;
  createAlertRule(body: AlertRuleBody): Promise<AlertRule>;
  updateAlertRule(id: string, body: AlertRuleBody): Promise<AlertRule>;
  deleteAlertRule(id: string): Promise<void>;
  listMaintenanceWindows(): Promise<MaintenanceWindow[]>;
  createMaintenanceWindow(body: MaintenanceWindowBody): Promise<MaintenanceWindow>;
  deleteMaintenanceWindow(id: string): Promise<void>;

  listChannels(): Promise<NotificationChannel[]>;
  createChannel(body: ChannelBody): Promise<NotificationChannel>;
  updateChannel(id: string, body: ChannelBody): Promise<NotificationChannel>;
  deleteChannel(id: string): Promise<void>;
  /** Queues a test message through the channel; the answer is its delivery. */
  testChannel(id: string): Promise<unknown>;
  listRoutes(): Promise<NotificationRoute[]>;
  createRoute(body: RouteBody): Promise<NotificationRoute>;
  deleteRoute(id: string): Promise<void>;
  listDeliveries(query?: DeliveryQuery): Promise<NotificationDelivery[]>;

  listPolicies(): Promise<Policy[]>;
  createPolicy(body: PolicyBody): Promise<Policy>;
  updatePolicy(id: string, body: PolicyBody): Promise<Policy>;
  deletePolicy(id: string): Promise<void>;
  listPolicyAssignments(): Promise<PolicyAssignment[]>;
  assignPolicy(policyId: string, scope: Scope): Promise<PolicyAssignment>;
  unassignPolicy(id: string): Promise<void>;
  agentPolicy(agentId: string): Promise<EffectivePolicy>;

  listUsers(): Promise<User[]>;
  createUser(body: Schemas['NewUserRequest']): Promise<User>;
  deleteUser(id: string): Promise<void>;
  /** Role, password reset, disabled: any change ends all of that user's sessions. */
  updateUser(id: string, body: Schemas['UpdateUserRequest']): Promise<User>;
  /** Admin: turns a user's two-factor sign-in off (lost device and recovery codes). */
  resetUserTwoFactor(id: string): Promise<void>;

  /** Admin: settings changed at run time. */
  serverSettings(): Promise<Schemas['ServerSettings']>;
  updateServerSettings(body: Schemas['ServerSettingsUpdate']): Promise<Schemas['ServerSettings']>;

  twoFactorStatus(): Promise<Schemas['TwoFactorStatus']>;
  /** A new secret, pending until `confirmTwoFactor` gets a code made from it. */
  setupTwoFactor(): Promise<Schemas['TwoFactorSetup']>;
  /** Turns two-factor sign-in on; the answer's recovery codes are shown this once. */
  confirmTwoFactor(code: string): Promise<Schemas['RecoveryCodes']>;
  disableTwoFactor(code: string): Promise<Schemas['TwoFactorStatus']>;

  /** URL of the event stream with a single-use ticket (EventSource sends no headers; the
   * long-lived token never goes into a URL). */
  eventsUrl(ticket: string): string;
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

// The typed caller: everything a call may send and gets back is read from `paths` in
// api-types.ts, so a change of the document that breaks a call breaks the build.

export type Method = 'get' | 'put' | 'post' | 'delete' | 'patch';

/** The operation at `path` for `method`; openapi-typescript writes a missing one as `get?: never`. */
type Operation<P extends keyof paths, M extends Method> = Extract<paths[P][M], { responses: unknown }>;

/** The paths that have an operation for `method`. */
export type PathsFor<M extends Method> = {
  [P in keyof paths]: [Operation<P, M>] extends [never] ? never : P;
}[keyof paths];

type JsonOf<T> = T extends { content: { 'application/json': infer J } } ? J : never;

/** The success answer: the 200 or 201 JSON body, or nothing for a 204. */
export type SuccessBody<Op> = Op extends { responses: infer R }
  ? R extends { 200: infer S }
    ? JsonOf<S>
    : R extends { 201: infer S }
      ? JsonOf<S>
      : R extends { 204: unknown }
        ? void
        : never
  : never;

type PathParamsOf<Op> = Op extends { parameters: { path: infer A } } ? A : never;
type QueryOf<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

type ParamsPart<Op> = [PathParamsOf<Op>] extends [never] ? { params?: never } : { params: PathParamsOf<Op> };
type QueryPart<Op> = [QueryOf<Op>] extends [never] ? { query?: never } : { query?: QueryOf<Op> };
type BodyPart<Op> = Op extends { requestBody: unknown }
  ? { body: JsonOf<Op['requestBody']> }
  : Op extends { requestBody?: unknown }
    ? { body?: JsonOf<NonNullable<Op['requestBody']>> }
    : { body?: never };

export type CallOptions<Op> = ParamsPart<Op> &
  QueryPart<Op> &
  BodyPart<Op> & {
    /** false for the calls made before signing in (login): no token, and a 401 ends no session. */
    authenticated?: boolean;
  };

/** The options argument may be left out only when nothing in it is required. */
type CallArgs<Op> = {} extends CallOptions<Op> ? [options?: CallOptions<Op>] : [options: CallOptions<Op>];

export type Call = <M extends Method, P extends PathsFor<M>>(
  method: M,
  path: P,
  ...args: CallArgs<Operation<P, M>>
) => Promise<SuccessBody<Operation<P, M>>>;

/** `/api/sites/{id}` with `{ id: 's 1' }` gives `/api/sites/s%201`. */
export function fillPath(template: string, params: Record<string, string | number> = {}): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(String(value));
  });
}

/** The one function that talks to the server; ApiError for every failure. */
export function createCall(options: ApiOptions): Call {
  const base = options.baseUrl ?? '';
  const doFetch: Fetch = options.fetchImpl ?? ((...args) => fetch(...args));

  async function call(
    method: Method,
    path: string,
    opts: {
      params?: Record<string, string | number>;
      query?: Record<string, string | number | undefined | null>;
      body?: unknown;
      authenticated?: boolean;
    } = {},
  ): Promise<unknown> {
    const { params, query, body, authenticated = true } = opts;
    const url = base + fillPath(path, params) + queryString({ ...query });
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (authenticated) {
      const token = options.getToken();
      if (token) headers.Authorization = `Bearer ${token}`;
    }
    let response: Response;
    try {
      response = await doFetch(url, {
        method: method.toUpperCase(),
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
      throw new ApiError(response.status, errorMessageFromBody(response.status, text), asksForSecondFactor(text));
    }
    if (response.status === 204 || !text.trim()) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(response.status, 'The server sent an answer that could not be read (not JSON)');
    }
  }

  // The one place the parsed JSON is trusted to be what the document says.
  return call as Call;
}

/**
 * A six-digit code goes as `totp_code`; anything else (`abcde-fghjk`) as `recovery_code`.
 * Nothing when there is no second factor to send.
 */
export function secondFactorFields(code?: string): { totp_code?: string; recovery_code?: string } {
  const c = (code ?? '').trim();
  if (!c) return {};
  return /^[0-9\s]+$/.test(c) ? { totp_code: c.replace(/\s/g, '') } : { recovery_code: c };
}

export function createApi(options: ApiOptions): ApiClient {
  const base = options.baseUrl ?? '';
  const call = createCall(options);

  return {
    login: (email, password, secondFactor) =>
      call('post', '/api/auth/login', { body: { email, password, ...secondFactorFields(secondFactor) }, authenticated: false }),
    logout: () => call('post', '/api/auth/logout'),
    me: () => call('get', '/api/auth/me'),
    authStatus: () => call('get', '/api/auth/status', { authenticated: false }),
    authProviders: () => call('get', '/api/auth/providers', { authenticated: false }),
    oidcExchange: (code) => call('post', '/api/auth/oidc/exchange', { body: { code }, authenticated: false }),
    changePassword: (body) => call('post', '/api/auth/password', { body }),
    listSessions: () => call('get', '/api/auth/sessions'),
    endSession: (id) => call('delete', '/api/auth/sessions/{id}', { params: { id } }),
    eventTicket: () => call('post', '/api/auth/event-ticket'),

    listClients: () => call('get', '/api/clients'),
    getClient: (id) => call('get', '/api/clients/{id}', { params: { id } }),
    createClient: (body) => call('post', '/api/clients', { body }),
    updateClient: (id, body) => call('put', '/api/clients/{id}', { params: { id }, body }),
    deleteClient: (id) => call('delete', '/api/clients/{id}', { params: { id } }),
    listClientSites: (id) => call('get', '/api/clients/{id}/sites', { params: { id } }),

    listSites: () => call('get', '/api/sites'),
    getSite: (id) => call('get', '/api/sites/{id}', { params: { id } }),
    createSite: (body) => call('post', '/api/sites', { body }),
    updateSite: (id, body) => call('put', '/api/sites/{id}', { params: { id }, body }),
    deleteSite: (id) => call('delete', '/api/sites/{id}', { params: { id } }),
    regenerateSiteKey: (id) => call('post', '/api/sites/{id}/regenerate-key', { params: { id } }),
    createSiteToken: (siteId, body) => call('post', '/api/sites/{id}/tokens', { params: { id: siteId }, body }),
    listSiteTokens: (siteId) => call('get', '/api/sites/{id}/tokens', { params: { id: siteId } }),
    revokeSiteToken: (siteId, tokenId) => call('delete', '/api/sites/{id}/tokens/{token_id}', { params: { id: siteId, token_id: tokenId } }),

    listAgents: (query) => call('get', '/api/agents', { query }),
    getAgent: (id) => call('get', '/api/agents/{id}', { params: { id } }),
    deleteAgent: (id) => call('delete', '/api/agents/{id}', { params: { id } }),
    agentStats: () => call('get', '/api/agents/stats'),
    unassignedAgents: () => call('get', '/api/agents/unassigned'),
    moveAgent: (id, siteId) => call('post', '/api/agents/{id}/move', { params: { id }, body: { site_id: siteId } }),
    approveAgent: (id) => call('post', '/api/agents/{id}/approve', { params: { id } }),
    rejectAgent: (id) => call('post', '/api/agents/{id}/reject', { params: { id } }),
    registerAgent: (body) => call('post', '/api/agents', { body }),
    agentState: async (id) =>
      // The document types `network` and `metrics` as any JSON (the agent's reports passed
      // through); the dashboard reads them as the wire protocol's shapes.
      (await call('get', '/api/agents/{id}/state', { params: { id } })) as AgentState,
    agentMetrics: (id, from, to) =>
      call('get', '/api/agents/{id}/metrics', {
        params: { id },
        query: { from: from.toISOString(), to: to.toISOString() },
      }),
    watchdogEvents: (id) => call('get', '/api/agents/{id}/watchdog-events', { params: { id } }),
    agentUpdates: (id) => call('get', '/api/agents/{id}/updates', { params: { id } }),
    requestAgentUpdate: (id, version) => call('post', '/api/agents/{id}/update', { params: { id }, body: { version } }),
    retryAgentUpdate: (id) => call('post', '/api/agents/{id}/update/retry', { params: { id } }),
    agentVersions: () => call('get', '/api/agents/versions'),
    listReleases: () => call('get', '/api/releases'),
    listRollouts: () => call('get', '/api/rollouts'),
    setRollout: (os, arch, body) => call('put', '/api/rollouts/{os}/{arch}', { params: { os, arch }, body }),

    sendCommand: (id, body) => call('post', '/api/agents/{id}/command', { params: { id }, body }),
    listCommands: (query) => call('get', '/api/commands', { query }),
    getCommand: (id) => call('get', '/api/commands/{id}', { params: { id } }),
    cancelCommand: (id) => call('post', '/api/commands/{id}/cancel', { params: { id } }),

    metricsSummary: () => call('get', '/api/metrics/summary'),

    // Parameter defaults and values are any JSON in the document; the dashboard sends and reads
    // them as string, number or boolean (ScriptParameter, JobBody).
    listScripts: async (query) => (await call('get', '/api/scripts', { query })) as Script[],
    getScript: async (id) => (await call('get', '/api/scripts/{id}', { params: { id } })) as Script,
    createScript: async (body) => (await call('post', '/api/scripts', { body: body as Schemas['ScriptDefinition'] })) as Script,
    updateScript: async (id, body) => (await call('put', '/api/scripts/{id}', { params: { id }, body: body as Schemas['ScriptDefinition'] })) as Script,
    deleteScript: (id) => call('delete', '/api/scripts/{id}', { params: { id } }),
    scriptVersions: async (id) => (await call('get', '/api/scripts/{id}/versions', { params: { id } })) as ScriptVersion[],
    exportScripts: async () => (await call('get', '/api/scripts/export')) as ScriptExport,
    importScripts: (body) => call('post', '/api/scripts/import', { body: body as Schemas['ScriptExport'] }),

    createJob: (body) => call('post', '/api/jobs', { body: body as Schemas['JobBody'] }),
    listJobs: (query) => call('get', '/api/jobs', { query }),
    getJob: (id) => call('get', '/api/jobs/{id}', { params: { id } }),
    jobAgents: (id) => call('get', '/api/jobs/{id}/agents', { params: { id } }),
    cancelJob: (id) => call('post', '/api/jobs/{id}/cancel', { params: { id } }),
    rerunJob: (id) => call('post', '/api/jobs/{id}/rerun', { params: { id } }),

    listAlerts: (query) => call('get', '/api/alerts', { query }),
    alertSummary: () => call('get', '/api/alerts/summary'),
    acknowledgeAlert: (id, note) => call('post', '/api/alerts/{id}/acknowledge', { params: { id }, body: { note: note || null } }),
    resolveAlert: (id, note) => call('post', '/api/alerts/{id}/resolve', { params: { id }, body: { note: note || null } }),
    listAlertRules: () => call('get', '/api/alert-rules'),
    createAlertRule: (body) => call('post', '/api/alert-rules', { body }),
    updateAlertRule: (id, body) => call('put', '/api/alert-rules/{id}', { params: { id }, body }),
    deleteAlertRule: (id) => call('delete', '/api/alert-rules/{id}', { params: { id } }),
    listMaintenanceWindows: () => call('get', '/api/maintenance-windows'),
    createMaintenanceWindow: (body) => call('post', '/api/maintenance-windows', { body }),
    deleteMaintenanceWindow: (id) => call('delete', '/api/maintenance-windows/{id}', { params: { id } }),

    listChannels: () => call('get', '/api/notification-channels'),
    createChannel: (body) => call('post', '/api/notification-channels', { body }),
    updateChannel: (id, body) => call('put', '/api/notification-channels/{id}', { params: { id }, body }),
    deleteChannel: (id) => call('delete', '/api/notification-channels/{id}', { params: { id } }),
    testChannel: (id) => call('post', '/api/notification-channels/{id}/test', { params: { id } }),
    listRoutes: () => call('get', '/api/notification-routes'),
    createRoute: (body) => call('post', '/api/notification-routes', { body }),
    deleteRoute: (id) => call('delete', '/api/notification-routes/{id}', { params: { id } }),
    listDeliveries: (query) => call('get', '/api/notification-deliveries', { query }),

    listPolicies: () => call('get', '/api/policies'),
    createPolicy: (body) => call('post', '/api/policies', { body }),
    updatePolicy: (id, body) => call('put', '/api/policies/{id}', { params: { id }, body }),
    deletePolicy: (id) => call('delete', '/api/policies/{id}', { params: { id } }),
    listPolicyAssignments: () => call('get', '/api/policy-assignments'),
    assignPolicy: (policyId, scope) => call('post', '/api/policy-assignments', { body: { policy_id: policyId, scope } }),
    unassignPolicy: (id) => call('delete', '/api/policy-assignments/{id}', { params: { id } }),
    agentPolicy: (id) => call('get', '/api/agents/{id}/policy', { params: { id } }),

    listUsers: () => call('get', '/api/users'),
    createUser: (body) => call('post', '/api/users', { body }),
    deleteUser: (id) => call('delete', '/api/users/{id}', { params: { id } }),
    updateUser: (id, body) => call('put', '/api/users/{id}', { params: { id }, body }),
    resetUserTwoFactor: (id) => call('delete', '/api/users/{id}/two-factor', { params: { id } }),

    serverSettings: () => call('get', '/api/settings'),
    updateServerSettings: (body) => call('put', '/api/settings', { body }),

    twoFactorStatus: () => call('get', '/api/auth/two-factor'),
    setupTwoFactor: () => call('post', '/api/auth/two-factor/setup'),
    confirmTwoFactor: (code) => call('post', '/api/auth/two-factor/confirm', { body: { code } }),
    disableTwoFactor: (code) => call('post', '/api/auth/two-factor/disable', { body: { code } }),

    eventsUrl: (ticket) => `${base}/api/events${queryString({ ticket })}`,
  };
}
