// Jobs: a script (or command) run on many agents at once. The list and one job's page, both
// live: a job starting or cancelled comes as `job_updated`, its commands' progress as
// `command_updated` (the job's counts are read again, debounced).
import { useRef } from 'react';
import type { Job, JobAgent, JobCounts } from '../api';
import { useApi } from '../session';
import { useAction, useAsync, useDebounced } from '../hooks';
import { useLiveEvents } from '../live';
import { ConfirmButton, Empty, ErrorMessage, Loading, PageHeader, StatusBadge, Table } from '../components/ui';
import { formatDateTime, humanize } from '../lib/format';
import { href, navigate } from '../lib/router';
import { countsText, jobProgress } from '../lib/jobs';

export function JobProgress({ counts }: { counts: JobCounts }) {
  const p = jobProgress(counts);
  const text = countsText(counts);
  return (
    <div className="job-progress" data-testid="job-progress">
      <div className="progress" role="progressbar" aria-label="Progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={p.done} aria-valuetext={text}>
        <span className="p-completed" style={{ width: `${p.completed}%` }} />
        <span className="p-failed" style={{ width: `${p.failed}%` }} />
        <span className="p-other" style={{ width: `${p.other}%` }} />
        <span className="p-running" style={{ width: `${p.running}%` }} />
      </div>
      <span className="muted small-text">{text}</span>
    </div>
  );
}

function scriptLabel(j: Job): string {
  if (j.script_name) return `${j.script_name} v${j.script_version ?? '?'}`;
  return `${humanize(j.command_type)} command`;
}

export function JobsPage() {
  const { api } = useApi();
  const jobs = useAsync<Job[]>(() => api.listJobs({ limit: 100 }), [api]);
  const refresh = useDebounced(() => jobs.reload(), 300);
  useLiveEvents((e) => {
    if (e.type === 'job_updated') jobs.reload();
    else if (e.type === 'command_updated') refresh();
  });
  return (
    <>
      <PageHeader title="Jobs">
        <a href={href('/scripts')}>Scripts</a>
      </PageHeader>
      <ErrorMessage error={jobs.error} prefix="Jobs could not be loaded" />
      {!jobs.data && !jobs.error ? <Loading what="Loading jobs" /> : null}
      {jobs.data?.length === 0 ? (
        <Empty>
          No job yet: run a script from the <a href={href('/scripts')}>scripts page</a>.
        </Empty>
      ) : null}
      {jobs.data?.length ? (
        <Table caption="Jobs" columns={['Job', 'Script', 'Started', 'Status', 'Progress']}>
          {jobs.data.map((j) => (
            <tr key={j.id} data-job-id={j.id}>
              <td>
                <a href={href(`/jobs/${j.id}`)}>{j.name}</a>
              </td>
              <td>{scriptLabel(j)}</td>
              <td>
                {formatDateTime(j.created_at)}
                <div className="muted small-text">{j.created_by ?? (j.schedule_id ? 'a schedule' : '')}</div>
              </td>
              <td>
                <StatusBadge status={j.status} />
              </td>
              <td>
                <JobProgress counts={j.counts} />
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
    </>
  );
}

export function JobPage({ id }: { id: string }) {
  const { api, user } = useApi();
  const job = useAsync<Job>(() => api.getJob(id), [api, id]);
  const agents = useAsync<JobAgent[]>(() => api.jobAgents(id), [api, id]);
  const commandIds = useRef(new Set<string>());
  commandIds.current = new Set((agents.data ?? []).map((a) => a.command_id));
  const refresh = useDebounced(() => {
    job.reload();
    agents.reload();
  }, 300);
  useLiveEvents((e) => {
    if (e.type === 'command_updated' && commandIds.current.has(e.data.id)) refresh();
    else if (e.type === 'job_updated' && e.data.id === id) refresh();
  });
  const canRun = user.role !== 'viewer';
  const rerun = useAction(async () => {
    const next = await api.rerunJob(id);
    navigate(`/jobs/${next.id}`);
  });
  const j = job.data;
  const failedSome = j ? j.counts.failed + j.counts.timed_out + j.counts.expired > 0 : false;
  return (
    <>
      <PageHeader title={j ? `Job ${j.name}` : 'Job'}>
        <a href={href('/jobs')}>All jobs</a>
        {j && canRun ? (
          <>
            <ConfirmButton
              label="Cancel job"
              title="Cancel this job?"
              message="Agents that have not finished it get a cancel; those that have keep their result."
              confirmLabel="Cancel job"
              danger
              disabled={j.status !== 'running'}
              onConfirm={async () => {
                await api.cancelJob(id);
                refresh();
              }}
            />
            <button type="button" className="secondary small" disabled={!failedSome || rerun.busy} onClick={() => void rerun.run()}>
              Re-run where it failed
            </button>
          </>
        ) : null}
      </PageHeader>
      <ErrorMessage error={job.error} prefix="The job could not be loaded" />
      <ErrorMessage error={rerun.error} prefix="The job could not be re-run" />
      {!j && !job.error ? <Loading what="Loading the job" /> : null}
      {j ? (
        <section className="card" aria-label="Job" data-job-id={j.id}>
          <p>
            <StatusBadge status={j.status} /> {scriptLabel(j)} · started {formatDateTime(j.created_at)}
            {j.created_by ? ` by ${j.created_by}` : ''}
            {j.expires_at ? ` · expires ${formatDateTime(j.expires_at)}` : ''}
            {j.cancelled_at ? ` · cancelled ${formatDateTime(j.cancelled_at)}` : ''}
            {j.rerun_of ? (
              <>
                {' '}
                · re-run of <a href={href(`/jobs/${j.rerun_of}`)}>an earlier job</a>
              </>
            ) : null}
          </p>
          <JobProgress counts={j.counts} />
          {Object.keys(j.parameters).length ? (
            <dl className="params">
              {Object.entries(j.parameters).map(([k, v]) => (
                <div key={k}>
                  <dt>
                    <code>{k}</code>
                  </dt>
                  <dd>
                    <code>{v}</code>
                  </dd>
                </div>
              ))}
            </dl>
          ) : null}
          {!j.script_id ? <code className="run-cmd">{j.command}</code> : null}
        </section>
      ) : null}
      <section aria-labelledby="job-agents-title">
        <h2 id="job-agents-title">Agents</h2>
        <ErrorMessage error={agents.error} prefix="The job's agents could not be loaded" />
        {agents.data?.length === 0 ? <Empty>No agent matched the target.</Empty> : null}
        {agents.data?.length ? (
          <Table caption="The job's agents" columns={['Agent', 'Status', 'Exit code', 'Finished', '']}>
            {agents.data.map((a) => (
              <tr key={a.command_id} data-agent-id={a.agent_id}>
                <td>
                  <a href={href(`/agents/${a.agent_id}`)}>{a.hostname ?? a.agent_id.slice(0, 8)}</a>
                </td>
                <td>
                  <StatusBadge status={a.status} />
                </td>
                <td>{a.exit_code ?? ''}</td>
                <td>{a.completed_at ? formatDateTime(a.completed_at) : ''}</td>
                <td>
                  <a href={href(`/commands/${a.command_id}`)}>Command and output</a>
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
      </section>
    </>
  );
}
