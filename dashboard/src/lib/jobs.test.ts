import { describe, expect, it } from 'vitest';
import type { JobCounts, Script, ScriptParameter } from '../api';
import { buildJobBody, countsText, EMPTY_SCRIPT_FORM, envVarHint, formToDefinition, initialValues, jobProgress, parameterValues, scriptToForm, targetFromForm, type TargetForm } from './jobs';

const PARAMS: ScriptParameter[] = [
  { name: 'VALUE', label: 'Value', kind: 'string', required: true },
  { name: 'COUNT', kind: 'number', required: false, default: 3 },
  { name: 'FORCE', kind: 'boolean', default: true },
  { name: 'MODE', kind: 'choice', choices: ['fast', 'slow'], default: 'slow' },
];
const SCRIPT: Pick<Script, 'id' | 'content'> = { id: 's1', content: { command_type: 'shell', body: 'printf "%s\\n" "$VALUE"', parameters: PARAMS } };
const AGENTS: TargetForm = { kind: 'agents', agentIds: ['a1'], siteId: '', clientId: '', os: '', onlineOnly: false };

describe('parameterValues and buildJobBody', () => {
  it('types each value as its parameter says', () => {
    expect(parameterValues(PARAMS, { VALUE: 'x', COUNT: '12', FORCE: false, MODE: 'fast' })).toEqual({ VALUE: 'x', COUNT: 12, FORCE: false, MODE: 'fast' });
  });
  it('passes a value with quotes, ; and $(...) through untouched', () => {
    const nasty = `it's "quoted"; $(echo pwned) \`id\` \\ \n  tab\t`;
    const body = buildJobBody(SCRIPT, { ...initialValues(PARAMS), VALUE: nasty }, AGENTS, '');
    expect(body.parameters?.VALUE).toBe(nasty);
    expect(JSON.parse(JSON.stringify(body)).parameters.VALUE).toBe(nasty);
  });
  it('starts from the defaults and leaves out an empty optional value', () => {
    expect(initialValues(PARAMS)).toEqual({ VALUE: '', COUNT: '3', FORCE: true, MODE: 'slow' });
    expect(parameterValues(PARAMS, { ...initialValues(PARAMS), VALUE: 'v', COUNT: '' })).toEqual({ VALUE: 'v', FORCE: true, MODE: 'slow' });
  });
  it('refuses a missing required value and a number that is not one', () => {
    expect(() => parameterValues(PARAMS, initialValues(PARAMS))).toThrow('Value is required');
    expect(() => parameterValues(PARAMS, { ...initialValues(PARAMS), VALUE: 'v', COUNT: '12abc' })).toThrow('COUNT must be a number');
  });
  it('sends the script, the target and the expiry in seconds', () => {
    expect(buildJobBody(SCRIPT, { VALUE: 'v', COUNT: '1', FORCE: false, MODE: 'fast' }, AGENTS, '1.5')).toEqual({
      script_id: 's1',
      parameters: { VALUE: 'v', COUNT: 1, FORCE: false, MODE: 'fast' },
      target: { agent_ids: ['a1'] },
      expires_in_seconds: 5400,
    });
    expect(() => buildJobBody(SCRIPT, { VALUE: 'v' }, AGENTS, '-1')).toThrow(/expiry/);
  });
});

describe('targetFromForm', () => {
  it('gives one criterion per kind', () => {
    expect(targetFromForm({ ...AGENTS, kind: 'site', siteId: 's' })).toEqual({ site_id: 's' });
    expect(targetFromForm({ ...AGENTS, kind: 'client', clientId: 'c' })).toEqual({ client_id: 'c' });
    expect(targetFromForm({ ...AGENTS, kind: 'filter', os: 'linux', onlineOnly: true })).toEqual({ os_type: 'linux', online: true });
  });
  it('says "all" for a filter without criteria, and refuses an empty choice', () => {
    expect(targetFromForm({ ...AGENTS, kind: 'filter' })).toEqual({ all: true });
    expect(() => targetFromForm({ ...AGENTS, agentIds: [] })).toThrow(/agent/);
    expect(() => targetFromForm({ ...AGENTS, kind: 'site' })).toThrow(/site/);
  });
});

describe('the script form', () => {
  it('keeps the body as written and types the defaults', () => {
    const body = 'if true; then\n\techo "a"\n    echo b\nfi\n';
    const def = formToDefinition({
      ...EMPTY_SCRIPT_FORM,
      name: ' Top ',
      body,
      parameters: [
        { name: 'N', label: '', kind: 'number', required: false, default: '5', choices: '' },
        { name: 'B', label: 'Flag', kind: 'boolean', required: false, default: 'true', choices: '' },
        { name: 'C', label: '', kind: 'choice', required: true, default: '', choices: 'a, b\nc' },
      ],
    });
    expect(def.body).toBe(body);
    expect(def.name).toBe('Top');
    expect(def.interpreter).toBeNull();
    expect(def.parameters).toEqual([
      { name: 'N', label: null, kind: 'number', required: false, default: 5 },
      { name: 'B', label: 'Flag', kind: 'boolean', required: false, default: true },
      { name: 'C', label: null, kind: 'choice', required: true, default: null, choices: ['a', 'b', 'c'] },
    ]);
    expect(() => formToDefinition({ ...EMPTY_SCRIPT_FORM, parameters: [{ name: 'N', label: '', kind: 'number', required: false, default: 'x', choices: '' }] })).toThrow(/not a number/);
  });
  it('reads a script back into the same form', () => {
    const script: Script = { id: 's', name: 'n', description: 'd', category: 'c', version: 2, created_at: '', updated_at: '', content: SCRIPT.content };
    const form = scriptToForm(script);
    expect(form.parameters.map((p) => p.default)).toEqual(['', '3', 'true', 'slow']);
    expect(formToDefinition(form).parameters).toEqual([
      { name: 'VALUE', label: 'Value', kind: 'string', required: true, default: null },
      { name: 'COUNT', label: null, kind: 'number', required: false, default: 3 },
      { name: 'FORCE', label: null, kind: 'boolean', required: false, default: true },
      { name: 'MODE', label: null, kind: 'choice', required: false, default: 'slow', choices: ['fast', 'slow'] },
    ]);
  });
  it('names the environment variable as each shell reads it', () => {
    expect(envVarHint('shell', 'TOP_PATH')).toBe('$TOP_PATH');
    expect(envVarHint('powershell', 'TOP_PATH')).toBe('$env:TOP_PATH');
    expect(envVarHint('python', 'X')).toBe('os.environ["X"]');
  });
});

describe('jobProgress', () => {
  const counts = (c: Partial<JobCounts>): JobCounts => ({ total: 0, queued: 0, running: 0, completed: 0, failed: 0, timed_out: 0, cancelled: 0, expired: 0, ...c });
  it('gives percentages of the total, failures with time-outs', () => {
    expect(jobProgress(counts({ total: 4, completed: 1, failed: 1, timed_out: 1, running: 1 }))).toEqual({ completed: 25, failed: 50, running: 25, other: 0, done: 75 });
    expect(jobProgress(counts({ total: 3, completed: 1, expired: 1, queued: 1 }))).toEqual({ completed: 33.3, failed: 0, running: 0, other: 33.3, done: 66.7 });
  });
  it('is zero for a job without agents', () => {
    expect(jobProgress(counts({}))).toEqual({ completed: 0, failed: 0, running: 0, other: 0, done: 0 });
  });
  it('says the counts in words', () => {
    expect(countsText(counts({ total: 3, completed: 2, queued: 1 }))).toBe('2 of 3 done: 2 completed, 1 queued');
    expect(countsText(counts({}))).toBe('0 of 0 done');
  });
});
