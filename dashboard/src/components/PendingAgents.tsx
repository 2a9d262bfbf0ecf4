// Records waiting for a technician's approval: machines that enrolled with a site code or a
// token and claim to be an existing agent (its device id), or new machines at a site that
// requires approval. They get no commands until approved.
import type { Agent } from '../api';
import { useApi } from '../session';
import { formatDateTime, formatOsVersion } from '../lib/format';
import { href } from '../lib/router';
import { ConfirmButton, Table } from './ui';

/** Approve / Reject for one pending record; `onDone` gets the approved agent (or null). */
export function ApprovalButtons({ pending, claimed, onDone }: { pending: Agent; claimed?: string; onDone: (approved: Agent | null) => void }) {
  const { api, user } = useApi();
  if (user.role === 'viewer') return <span className="muted">a technician approves or rejects it</span>;
  const who = claimed ?? pending.claims_agent_id;
  return (
    <span className="inline-form tight">
      <ConfirmButton
        label="Approve"
        className="primary small"
        title={`Approve ${pending.hostname}?`}
        message={
          who ? (
            <p>
              This machine takes the place of the agent it claims to be ({claimed ?? 'see its page'}): that agent keeps its id and history, gets this
              machine's key, and its old key stops working.
            </p>
          ) : (
            <p>The machine is admitted as a new agent and can receive commands.</p>
          )
        }
        confirmLabel="Approve"
        onConfirm={async () => onDone(await api.approveAgent(pending.id))}
      />
      <ConfirmButton
        label="Reject"
        danger
        title={`Reject ${pending.hostname}?`}
        message={<p>The record is removed and its key stops working.</p>}
        confirmLabel="Reject"
        onConfirm={async () => {
          await api.rejectAgent(pending.id);
          onDone(null);
        }}
      />
    </span>
  );
}

/** The "Waiting for approval" section; renders nothing when no record waits. */
export function PendingAgents({ pending, onChange }: { pending: Agent[]; onChange: () => void }) {
  if (pending.length === 0) return null;
  return (
    <section aria-labelledby="pending-title" className="card">
      <h2 id="pending-title">Waiting for approval</h2>
      <p className="muted">
        These machines enrolled but are not trusted yet: they receive no commands. A machine that claims to be an existing agent used that agent&apos;s device
        id, which anyone on that machine can compute; approve it only if you reinstalled or restored that agent.
      </p>
      <Table caption="Machines waiting for approval" columns={['Hostname', 'Claims to be', 'Site', 'Operating system', 'Enrolled', 'Decision']}>
        {pending.map((p) => (
          <tr key={p.id} data-testid="pending-agent">
            <td>
              <a href={href(`/agents/${p.id}`)}>{p.hostname}</a>
            </td>
            <td>{p.claims_agent_id ? <a href={href(`/agents/${p.claims_agent_id}`)}>an existing agent</a> : <span className="muted">a new machine</span>}</td>
            <td>{p.site_id ? `${p.client_name} / ${p.site_name}` : <span className="muted">none</span>}</td>
            <td>{formatOsVersion(p.os_type, p.os_version)}</td>
            <td>{formatDateTime(p.created_at)}</td>
            <td>
              <ApprovalButtons pending={p} onDone={onChange} />
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
