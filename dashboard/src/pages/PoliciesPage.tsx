// Policies: named, versioned agent settings, assigned to the fleet, a client, a site or an
// agent. An agent's effective policy (with where each value came from) is on its page.
import { useState } from 'react';
import type { Policy, PolicyAssignment, Scope } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { ConfirmButton, Empty, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';
import { ScopePicker, useScopeNames } from '../components/ScopePicker';
import { formatDateTime } from '../lib/format';
import { EMPTY_POLICY_FORM, formToPolicy, policyToForm, scopeLabel, type Names, type PolicyForm } from '../lib/scope';

const NUMBER_FIELDS: { key: keyof PolicyForm; label: string }[] = [
  { key: 'metrics_interval_seconds', label: 'Metrics every (seconds)' },
  { key: 'heartbeat_interval_seconds', label: 'Heartbeat every (seconds)' },
  { key: 'network_check_interval_seconds', label: 'Network check every (seconds)' },
  { key: 'cpu_alert_percent', label: 'CPU alert threshold (%)' },
  { key: 'memory_alert_percent', label: 'Memory alert threshold (%)' },
  { key: 'disk_alert_percent', label: 'Disk alert threshold (%)' },
];

function PolicyEditor({ editing, onSaved, onCancel }: { editing: Policy | null; onSaved: () => void; onCancel: () => void }) {
  const { api } = useApi();
  const [name, setName] = useState(editing?.name ?? '');
  const [description, setDescription] = useState(editing?.description ?? '');
  const [form, setForm] = useState<PolicyForm>(editing ? policyToForm(editing.settings) : EMPTY_POLICY_FORM);
  const set = (key: keyof PolicyForm) => (e: { target: { value: string } }) => setForm({ ...form, [key]: e.target.value });
  const save = useAction(async () => {
    const body = { name, description: description || null, settings: formToPolicy(form) };
    if (editing) await api.updatePolicy(editing.id, body);
    else await api.createPolicy(body);
    onSaved();
  });
  return (
    <section className="card" aria-labelledby="policy-form-title">
      <h2 id="policy-form-title">{editing ? `Change policy “${editing.name}” (version ${editing.version})` : 'New policy'}</h2>
      <p className="muted">Leave a field empty to inherit it from a less specific policy, or from the agent’s agent.toml.</p>
      <form
        className="stack-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="policy-name">Name</label>
          <input id="policy-name" value={name} required maxLength={200} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="policy-description">Description</label>
          <input id="policy-description" value={description} maxLength={2000} onChange={(e) => setDescription(e.target.value)} />
        </div>
        {NUMBER_FIELDS.map((f) => (
          <div className="field" key={f.key}>
            <label htmlFor={`policy-${f.key}`}>{f.label}</label>
            <input id={`policy-${f.key}`} inputMode="numeric" value={form[f.key]} onChange={set(f.key)} />
          </div>
        ))}
        <div className="field">
          <label htmlFor="policy-collectors">Metric collectors (comma-separated: cpu, memory, disk, network, …)</label>
          <input id="policy-collectors" value={form.collectors} onChange={set('collectors')} />
        </div>
        <div className="field">
          <label htmlFor="policy-services">Watchdog services, one per line: name, action (restart or alert), max restarts, cooldown seconds. “-” watches none.</label>
          <textarea id="policy-services" rows={4} value={form.watchdog_services} onChange={set('watchdog_services')} />
        </div>
        <div>
          <button type="submit" className="primary" disabled={save.busy}>
            {editing ? 'Save policy' : 'Add policy'}
          </button>{' '}
          {editing ? (
            <button type="button" className="secondary" onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </form>
      <ErrorMessage error={save.error} prefix="The policy could not be saved" />
    </section>
  );
}

function AssignForm({ policies, names, onSaved }: { policies: Policy[]; names: Names; onSaved: () => void }) {
  const { api } = useApi();
  const [policyId, setPolicyId] = useState('');
  const [scope, setScope] = useState<Scope>({ kind: 'fleet' });
  const save = useAction(async () => {
    await api.assignPolicy(policyId || policies[0]?.id || '', scope);
    onSaved();
  });
  return (
    <form
      className="inline-form"
      aria-label="Assign a policy"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <div className="field">
        <label htmlFor="assign-policy">Policy</label>
        <select id="assign-policy" value={policyId || policies[0]?.id || ''} onChange={(e) => setPolicyId(e.target.value)}>
          {policies.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </div>
      <ScopePicker idPrefix="assign" value={scope} onChange={setScope} names={names} />
      <button type="submit" className="primary" disabled={save.busy || policies.length === 0}>
        Assign
      </button>
      <ErrorMessage error={save.error} prefix="The policy could not be assigned" />
    </form>
  );
}

export function PoliciesPage() {
  const { api, user } = useApi();
  const names = useScopeNames();
  const policies = useAsync<Policy[]>(() => api.listPolicies(), [api]);
  const assignments = useAsync<PolicyAssignment[]>(() => api.listPolicyAssignments(), [api]);
  const [editing, setEditing] = useState<Policy | null>(null);
  const canEdit = user.role !== 'viewer';
  return (
    <>
      <PageHeader title="Policies" />
      <ErrorMessage error={policies.error} prefix="Policies could not be loaded" />
      {!policies.data && !policies.error ? <Loading what="Loading policies" /> : null}
      {policies.data?.length === 0 ? <Empty>No policy yet: every agent runs with its agent.toml.</Empty> : null}
      {policies.data?.length ? (
        <Table caption="Policies" columns={['Name', 'Version', 'Settings', 'Changed', '']}>
          {policies.data.map((p) => (
            <tr key={p.id} data-policy-id={p.id}>
              <td>
                {p.name}
                {p.description ? <div className="muted">{p.description}</div> : null}
              </td>
              <td>{p.version}</td>
              <td>
                <code>{JSON.stringify(p.settings)}</code>
              </td>
              <td>{formatDateTime(p.updated_at)}</td>
              <td>
                {canEdit ? (
                  <>
                    <button type="button" className="secondary small" onClick={() => setEditing(p)}>
                      Edit
                    </button>{' '}
                    <ConfirmButton
                      label="Delete"
                      title={`Delete policy “${p.name}”?`}
                      message="Its assignments go too; the agents they covered fall back to what else applies."
                      confirmLabel="Delete policy"
                      danger
                      onConfirm={async () => {
                        await api.deletePolicy(p.id);
                        policies.reload();
                        assignments.reload();
                      }}
                    />
                  </>
                ) : null}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      {canEdit ? (
        <PolicyEditor
          key={editing?.id ?? 'new'}
          editing={editing}
          onSaved={() => {
            setEditing(null);
            policies.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      ) : null}
      <section aria-labelledby="assignments-title">
        <h2 id="assignments-title">Assignments</h2>
        <p className="muted">One policy per scope. For each setting the most specific wins: agent over site over client over fleet.</p>
        <ErrorMessage error={assignments.error} prefix="Assignments could not be loaded" />
        {assignments.data?.length === 0 ? <Empty>No policy is assigned.</Empty> : null}
        {assignments.data?.length ? (
          <Table caption="Policy assignments" columns={['Applies to', 'Policy', 'Since', '']}>
            {assignments.data.map((a) => (
              <tr key={a.id}>
                <td>{scopeLabel(a.scope, names)}</td>
                <td>{a.policy_name}</td>
                <td>{formatDateTime(a.created_at)}</td>
                <td>
                  {canEdit ? (
                    <ConfirmButton
                      label="Remove"
                      title="Remove this assignment?"
                      message="The agents it covered fall back to what else applies."
                      confirmLabel="Remove"
                      danger
                      onConfirm={async () => {
                        await api.unassignPolicy(a.id);
                        assignments.reload();
                      }}
                    />
                  ) : null}
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
        {canEdit && policies.data?.length ? <AssignForm policies={policies.data} names={names} onSaved={() => assignments.reload()} /> : null}
      </section>
    </>
  );
}
