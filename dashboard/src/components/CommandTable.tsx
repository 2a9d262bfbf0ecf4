// A list of command records, each row expandable to its output (the list's preview: the first
// 500 characters, the rest fetched on demand or on the command's own page).
import type { CommandRecord } from '../api';
import { CommandOutput } from './CommandOutput';
import { formatDateTime, formatDuration, humanize } from '../lib/format';
import { href } from '../lib/router';
import { StatusBadge } from './ui';

export function CommandTable({ commands, showAgent = true }: { commands: CommandRecord[]; showAgent?: boolean }) {
  return (
    <div className="table-wrap">
      <table className="commands">
        <caption className="visually-hidden">Commands</caption>
        <thead>
          <tr>
            <th scope="col">Created</th>
            {showAgent ? <th scope="col">Agent</th> : null}
            <th scope="col">Type</th>
            <th scope="col">Command and output</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">Exit</th>
            <th scope="col" className="num">Duration</th>
          </tr>
        </thead>
        <tbody>
          {commands.map((c) => (
            <tr key={c.id} data-command-id={c.id}>
              <td className="nowrap">{formatDateTime(c.created_at)}</td>
              {showAgent ? (
                <td>
                  <a href={href(`/agents/${c.agent_id}`)}>{c.hostname ?? c.agent_id.slice(0, 8)}</a>
                </td>
              ) : null}
              <td>{humanize(c.command_type)}</td>
              <td className="cmd-cell">
                <details>
                  <summary>
                    <code className="cmd-text">{c.command}</code>
                  </summary>
                  <CommandOutput c={c} />
                  <a href={href(`/commands/${c.id}`)}>Open this command</a>
                </details>
              </td>
              <td>
                <StatusBadge status={c.status} />
              </td>
              <td className="num">{c.exit_code ?? '—'}</td>
              <td className="num nowrap">{formatDuration(c.duration_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
