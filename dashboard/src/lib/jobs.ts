// The script editor's and the run form's rules that need no page: a script's form and its
// definition, a run's parameter values and target as the job body, and a job's progress.
import type { JobBody, JobCounts, JobTarget, ParamValue, Script, ScriptDefinition, ScriptKind, ScriptParameter, TargetOs } from '../api';

export const SCRIPT_KINDS = ['shell', 'powershell', 'python', 'script'] as const satisfies readonly ScriptKind[];
export const TARGET_OSES = ['any', 'windows', 'linux', 'macos'] as const satisfies readonly TargetOs[];
export const PARAMETER_KINDS = ['string', 'number', 'boolean', 'choice'] as const;

/** One parameter as the editor holds it: everything as text. */
export interface ParamForm {
  name: string;
  label: string;
  kind: ScriptParameter['kind'];
  required: boolean;
  /** '' for none; for boolean 'true' or 'false'. */
  default: string;
  /** For choice: the allowed values, one per line or comma-separated. */
  choices: string;
}

export interface ScriptForm {
  name: string;
  description: string;
  category: string;
  command_type: ScriptKind;
  interpreter: string;
  target_os: TargetOs;
  default_timeout_seconds: string;
  body: string;
  parameters: ParamForm[];
}

export const EMPTY_SCRIPT_FORM: ScriptForm = {
  name: '',
  description: '',
  category: '',
  command_type: 'shell',
  interpreter: '',
  target_os: 'any',
  default_timeout_seconds: '300',
  body: '',
  parameters: [],
};

export const EMPTY_PARAM: ParamForm = { name: '', label: '', kind: 'string', required: false, default: '', choices: '' };

/** How a script reads its parameter `name`, for the editor's hint. */
export function envVarHint(kind: ScriptKind, name: string): string {
  const n = name || 'NAME';
  if (kind === 'powershell') return `$env:${n}`;
  if (kind === 'python') return `os.environ["${n}"]`;
  return `$${n}`;
}

export function scriptToForm(s: Script): ScriptForm {
  const c = s.content;
  return {
    name: s.name,
    description: s.description,
    category: s.category,
    command_type: c.command_type,
    interpreter: c.interpreter ?? '',
    target_os: c.target_os ?? 'any',
    default_timeout_seconds: String(c.default_timeout_seconds ?? 300),
    body: c.body,
    parameters: (c.parameters ?? []).map((p) => ({
      name: p.name,
      label: p.label ?? '',
      kind: p.kind,
      required: p.required ?? false,
      default: p.default === undefined || p.default === null ? '' : String(p.default),
      choices: (p.choices ?? []).join('\n'),
    })),
  };
}

export function parseChoices(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A default written as text, typed as its kind says; null when empty. Throws when it cannot be. */
function typedDefault(p: ParamForm): ParamValue | null {
  if (p.default === '') return null;
  if (p.kind === 'number') {
    const n = Number(p.default.trim());
    if (p.default.trim() === '' || !Number.isFinite(n)) throw new Error(`the default of ${p.name || 'a parameter'} is not a number`);
    return n;
  }
  if (p.kind === 'boolean') return p.default === 'true';
  return p.default;
}

/** The definition the API takes; the body goes as written (tabs, indentation, trailing newline). */
export function formToDefinition(f: ScriptForm): ScriptDefinition {
  const timeout = Number(f.default_timeout_seconds.trim());
  if (!Number.isInteger(timeout)) throw new Error('the default timeout must be a whole number of seconds');
  return {
    name: f.name.trim(),
    description: f.description,
    category: f.category.trim(),
    command_type: f.command_type,
    interpreter: f.command_type === 'script' && f.interpreter.trim() ? f.interpreter.trim() : null,
    target_os: f.target_os,
    default_timeout_seconds: timeout,
    body: f.body,
    parameters: f.parameters.map((p) => ({
      name: p.name.trim(),
      label: p.label.trim() || null,
      kind: p.kind,
      required: p.required,
      default: typedDefault(p),
      ...(p.kind === 'choice' ? { choices: parseChoices(p.choices) } : {}),
    })),
  };
}

/** The run form's starting values: each parameter's default, else empty (false for a boolean). */
export function initialValues(params: ScriptParameter[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const p of params) {
    if (p.kind === 'boolean') out[p.name] = p.default === true || p.default === 'true';
    else if (p.kind === 'choice') out[p.name] = p.default != null ? String(p.default) : (p.choices?.[0] ?? '');
    else out[p.name] = p.default != null ? String(p.default) : '';
  }
  return out;
}

/**
 * The values a run sends, typed as each parameter's kind says: numbers as numbers, booleans as
 * booleans, text exactly as typed (quotes, `;`, `$(...)` and all: it reaches the script as an
 * environment variable, never through a shell). An empty optional value is left out, so the
 * server uses the default; an empty required one is an error.
 */
export function parameterValues(params: ScriptParameter[], values: Record<string, string | boolean>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const p of params) {
    const v = values[p.name];
    if (p.kind === 'boolean') {
      out[p.name] = v === true;
      continue;
    }
    const text = typeof v === 'string' ? v : '';
    if (text === '') {
      if (p.required && (p.default === undefined || p.default === null)) throw new Error(`${p.label || p.name} is required`);
      continue;
    }
    if (p.kind === 'number') {
      const n = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`${p.label || p.name} must be a number`);
      out[p.name] = n;
    } else {
      out[p.name] = text;
    }
  }
  return out;
}

export type TargetKind = 'agents' | 'site' | 'client' | 'filter';

export interface TargetForm {
  kind: TargetKind;
  agentIds: string[];
  siteId: string;
  clientId: string;
  /** '' for any OS. */
  os: string;
  onlineOnly: boolean;
}

export function targetFromForm(t: TargetForm): JobTarget {
  switch (t.kind) {
    case 'agents':
      if (t.agentIds.length === 0) throw new Error('choose at least one agent');
      return { agent_ids: t.agentIds };
    case 'site':
      if (!t.siteId) throw new Error('choose a site');
      return { site_id: t.siteId };
    case 'client':
      if (!t.clientId) throw new Error('choose a client');
      return { client_id: t.clientId };
    case 'filter': {
      const target: JobTarget = {};
      if (t.os) target.os_type = t.os;
      if (t.onlineOnly) target.online = true;
      // No criterion at all means the whole fleet, which the server wants said explicitly.
      if (!t.os && !t.onlineOnly) target.all = true;
      return target;
    }
  }
}

/** POST /api/jobs for a saved script. `expiresHours`: '' for none. */
export function buildJobBody(
  script: Pick<Script, 'id' | 'content'>,
  values: Record<string, string | boolean>,
  target: TargetForm,
  expiresHours: string,
): JobBody {
  const body: JobBody = {
    script_id: script.id,
    parameters: parameterValues(script.content.parameters ?? [], values),
    target: targetFromForm(target),
  };
  if (expiresHours.trim()) {
    const h = Number(expiresHours.trim());
    if (!Number.isFinite(h) || h <= 0) throw new Error('the expiry must be a positive number of hours');
    body.expires_in_seconds = Math.round(h * 3600);
  }
  return body;
}

/** A job's counts as whole percentages of its total, for the progress bar (done = finished in any way). */
export function jobProgress(c: JobCounts): { completed: number; failed: number; running: number; other: number; done: number } {
  if (c.total <= 0) return { completed: 0, failed: 0, running: 0, other: 0, done: 0 };
  const pct = (n: number) => Math.round((n / c.total) * 1000) / 10;
  const failed = c.failed + c.timed_out;
  const other = c.cancelled + c.expired;
  return {
    completed: pct(c.completed),
    failed: pct(failed),
    running: pct(c.running),
    other: pct(other),
    done: pct(c.completed + failed + other),
  };
}

/** "3 of 5 done: 2 completed, 1 failed" */
export function countsText(c: JobCounts): string {
  const done = c.completed + c.failed + c.timed_out + c.cancelled + c.expired;
  const parts = (
    [
      ['completed', c.completed],
      ['failed', c.failed],
      ['timed out', c.timed_out],
      ['cancelled', c.cancelled],
      ['expired', c.expired],
      ['running', c.running],
      ['queued', c.queued],
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([w, n]) => `${n} ${w}`);
  return `${done} of ${c.total} done${parts.length ? `: ${parts.join(', ')}` : ''}`;
}
