// One command: what it is, where it runs and its output, live while it runs. Opened in the
// middle of a run it shows what came before (GET /api/commands/{id}) and then follows.
import { useEffect } from 'react';
import { isFinished, type Agent, type CommandRecord } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { useFollowedCommands } from '../followCommands';
import { formatDateTime, humanize } from '../lib/format';
import { href } from '../lib/router';
import { CommandOutput } from '../components/CommandOutput';
import { ErrorMessage, Loading, PageHeader, StatusBadge } from '../components/ui';

export function CommandPage({ id }: { id: string }) {
  const { api, user } = useApi();
  const first = useAsync<CommandRecord>(() => api.getCommand(id), [api, id]);
  const followed = useFollowedCommands();
  const { follow } = followed;
  useEffect(() => {
    if (first.data) follow(first.data);
  }, [first.data, follow]);
  const f = followed.get(id);
  const c = f?.record ?? first.data;
  const agent = useAsync<Agent | null>(() => (c ? api.getAgent(c.agent_id) : Promise.resolve(null)), [api, c?.agent_id]);
  const cancel = useAction(async () => followed.update(await api.cancelCommand(id)));

  return (
    <>
      <PageHeader title="Command">
        <a href={href('/commands', c ? { agent: c.agent_id } : undefined)}>Commands of this agent</a>
      </PageHeader>
      <ErrorMessage error={first.error} prefix="The command could not be loaded" />
      {first.loading && !c ? <Loading what="Loading the command" /> : null}
      {c ? (
        <section className="card run" data-command-id={c.id} aria-label="Command">
          <div className="run-head">
            <a href={href(`/agents/${c.agent_id}`)}>{c.hostname ?? agent.data?.hostname ?? c.agent_id.slice(0, 8)}</a>
            <StatusBadge status={c.status} />
            <span className="muted small-text">
              {humanize(c.command_type)} · created {formatDateTime(c.created_at)}
            </span>
            {!isFinished(c.status) && user.role !== 'viewer' ? (
              <button type="button" className="secondary small" disabled={cancel.busy} onClick={() => void cancel.run()}>
                Cancel
              </button>
            ) : null}
          </div>
          <code className="run-cmd">{c.command}</code>
          <ErrorMessage error={cancel.error} prefix="The command could not be cancelled" />
          <ErrorMessage error={f?.error} prefix="Could not update this command" />
          <CommandOutput c={c} live={f?.out} streams={agent.data ? agent.data.capabilities.includes('live_output') : true} />
        </section>
      ) : null}
    </>
  );
}
