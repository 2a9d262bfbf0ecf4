// A list of command records, each row expandable to its output.
import type { CommandRecord } from '../api';
import { formatDateTime, formatDuration, humanize } from '../lib/format';
import { href } from '../lib/router';
import { StatusBadge } from './ui';

export function CommandOutput({ c }: { c: CommandRecord }) {
  const empty = !c.stdout && !c.stderr;
  return (
    <div className="output">
      <p className="muted small-text">
        Exit code {c.exit_code ?? '—'} · duration {formatDuration(c.duration_ms)} · sent {formatDateTime(c.sent_at)} · finished {formatDateTime(c.completed_at)}
        {c.created_by ? ` · by ${c.created_by}` : ''}
      </p>
      {c.stdout ? (
        <pre className="stdout" aria-label="Standard output" tabIndex={0}>
          {c.stdout}
        </pre>
      ) : null}
      {c.stderr ? (
        <pre className="stderr" aria-label="Standard error" tabIndex={0}>
          {c.stderr}
        </pre>
      ) : null}
      {empty ? <p className="muted">{c.status === 'pending' || c.status === 'running' ? 'No output yet.' : 'No output.'}</p> : null}
    </div>
  );
}

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
                    <code>{c.command}</code>
                  </summary>
                  <CommandOutput c={c} />
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
