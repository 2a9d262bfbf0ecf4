import { useMemo, useRef, useState } from 'react';
import type { Client, Release, Rollout, RolloutBody, Site, VersionCount } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { Empty, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';
import { formatDateTime } from '../lib/format';

const TARGETS = [
  ['linux', 'x86_64'],
  ['linux', 'aarch64'],
  ['windows', 'x86_64'],
  ['windows', 'aarch64'],
] as const;

function scopeText(r: Rollout, sites: Site[], clients: Client[]): string {
  switch (r.scope) {
    case 'all':
      return 'every agent';
    case 'percentage':
      return `${r.percent}% of agents`;
    case 'sites':
      return `sites: ${r.site_ids.map((id) => sites.find((s) => s.id === id)?.name ?? id).join(', ')}`;
    case 'clients':
      return `clients: ${r.client_ids.map((id) => clients.find((c) => c.id === id)?.name ?? id).join(', ')}`;
  }
}

function Progress({ r }: { r: Rollout }) {
  const p = r.progress;
  return (
    <span data-testid={`progress-${r.os}-${r.arch}`}>
      {p.up_to_date} of {p.agents} on {r.version} or newer · {p.pending} sent · {p.downloading} downloading · {p.installed} installed · {p.completed} completed ·{' '}
      {p.failed} failed · {p.rolled_back} rolled back
    </span>
  );
}

function RolloutForm({ releases, sites, clients, current, onSaved }: { releases: Release[]; sites: Site[]; clients: Client[]; current: Rollout[]; onSaved: () => void }) {
  const { api } = useApi();
  const [target, setTarget] = useState('linux/x86_64');
  const [os, arch] = target.split('/');
  const existing = current.find((r) => r.os === os && r.arch === arch);
  const versions = releases.filter((r) => r.os === os && r.arch === arch).map((r) => r.version);
  const [version, setVersion] = useState('');
  const [scope, setScope] = useState<RolloutBody['scope']>('percentage');
  const [percent, setPercent] = useState(10);
  const [siteIds, setSiteIds] = useState<string[]>([]);
  const [clientIds, setClientIds] = useState<string[]>([]);
  const [paused, setPaused] = useState(false);
  const chosenVersion = version || existing?.version || versions[0] || '';
  const save = useAction(async () => {
    await api.setRollout(os, arch, { version: chosenVersion, scope, percent, site_ids: scope === 'sites' ? siteIds : [], client_ids: scope === 'clients' ? clientIds : [], paused });
    onSaved();
  });
  const toggle = (list: string[], set: (v: string[]) => void, id: string) => set(list.includes(id) ? list.filter((x) => x !== id) : [...list, id]);
  return (
    <section className="card" aria-labelledby="set-rollout-title">
      <h2 id="set-rollout-title">Set a target</h2>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <div className="field">
          <label htmlFor="rollout-target">OS and architecture</label>
          <select id="rollout-target" value={target} onChange={(e) => setTarget(e.target.value)}>
            {TARGETS.map(([o, a]) => (
              <option key={`${o}/${a}`} value={`${o}/${a}`}>
                {o} {a}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="rollout-version">Version</label>
          <select id="rollout-version" value={chosenVersion} onChange={(e) => setVersion(e.target.value)} disabled={versions.length === 0}>
            {versions.length === 0 ? <option value="">no build published</option> : null}
            {versions.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="rollout-scope">Who</label>
          <select id="rollout-scope" value={scope} onChange={(e) => setScope(e.target.value as RolloutBody['scope'])}>
            <option value="all">every agent</option>
            <option value="percentage">a percentage of agents</option>
            <option value="sites">chosen sites</option>
            <option value="clients">chosen clients</option>
          </select>
        </div>
        {scope === 'percentage' ? (
          <div className="field">
            <label htmlFor="rollout-percent">Percent</label>
            <input id="rollout-percent" type="number" min={0} max={100} value={percent} onChange={(e) => setPercent(Number(e.target.value))} />
          </div>
        ) : null}
        {scope === 'sites' ? (
          <fieldset>
            <legend>Sites</legend>
            {sites.map((s) => (
              <label key={s.id}>
                <input type="checkbox" checked={siteIds.includes(s.id)} onChange={() => toggle(siteIds, setSiteIds, s.id)} /> {s.client_name} / {s.name}
              </label>
            ))}
          </fieldset>
        ) : null}
        {scope === 'clients' ? (
          <fieldset>
            <legend>Clients</legend>
            {clients.map((c) => (
              <label key={c.id}>
                <input type="checkbox" checked={clientIds.includes(c.id)} onChange={() => toggle(clientIds, setClientIds, c.id)} /> {c.name}
              </label>
            ))}
          </fieldset>
        ) : null}
        <label>
          <input type="checkbox" checked={paused} onChange={(e) => setPaused(e.target.checked)} /> Paused (no new updates start)
        </label>
        <button type="submit" className="primary" disabled={save.busy || !chosenVersion}>
          {save.busy ? 'Saving…' : 'Save target'}
        </button>
      </form>
      <ErrorMessage error={save.error} prefix="The target could not be saved" />
      <p className="muted">
        A percentage picks the same agents every time and keeps them as it grows. Agents are never moved to an older version by a rollout; a failed update is
        retried only from the agent&apos;s page.
      </p>
    </section>
  );
}

/** Rollout targets per OS and architecture, their progress (live), and the fleet's versions. */
export function RolloutsPage() {
  const { api, user } = useApi();
  const rollouts = useAsync<Rollout[]>(() => api.listRollouts(), [api]);
  const releases = useAsync<Release[]>(() => api.listReleases(), [api]);
  const versions = useAsync<VersionCount[]>(() => api.agentVersions(), [api]);
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  const clients = useAsync<Client[]>(() => api.listClients(), [api]);
  const timer = useRef<number | undefined>(undefined);
  useLiveEvents((e) => {
    if (e.type !== 'agent_update') return;
    // Many agents report at once during a rollout: reload once per burst.
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      rollouts.reload();
      versions.reload();
    }, 300);
  });
  const sorted = useMemo(() => rollouts.data ?? [], [rollouts.data]);
  if (!rollouts.data && !rollouts.error) return <Loading what="Loading rollouts" />;
  return (
    <>
      <PageHeader title="Agent updates" />
      <ErrorMessage error={rollouts.error} prefix="Rollouts could not be loaded" />
      {sorted.length === 0 ? <Empty>No rollout yet: agents keep the version they run.</Empty> : null}
      {sorted.length ? (
        <Table caption="Rollouts" columns={['Target', 'Version', 'Who', 'State', 'Progress', 'Changed']}>
          {sorted.map((r) => (
            <tr key={`${r.os}/${r.arch}`} data-testid={`rollout-${r.os}-${r.arch}`}>
              <td>
                {r.os} {r.arch}
              </td>
              <td>{r.version}</td>
              <td>{scopeText(r, sites.data ?? [], clients.data ?? [])}</td>
              <td>{r.paused ? <strong>paused</strong> : 'active'}</td>
              <td>
                <Progress r={r} />
              </td>
              <td>{formatDateTime(r.updated_at)}</td>
            </tr>
          ))}
        </Table>
      ) : null}
      {user.role === 'admin' ? (
        <RolloutForm releases={releases.data ?? []} sites={sites.data ?? []} clients={clients.data ?? []} current={sorted} onSaved={() => rollouts.reload()} />
      ) : (
        <p className="muted">Only administrators set rollout targets.</p>
      )}
      <section aria-labelledby="builds-title">
        <h2 id="builds-title">Published builds</h2>
        <ErrorMessage error={releases.error} prefix="Builds could not be loaded" />
        {releases.data?.length === 0 ? (
          <Empty>
            No agent build is published. On the server: <code>gururmm-server release add --file BUILD --version V --os linux --arch x86_64 --key release.key</code>
          </Empty>
        ) : null}
        {releases.data?.length ? (
          <Table caption="Published builds" columns={['OS', 'Arch', 'Version', 'Size', 'SHA-256', 'Published']}>
            {releases.data.map((r) => (
              <tr key={r.id}>
                <td>{r.os}</td>
                <td>{r.arch}</td>
                <td>
                  {r.version}
                  {r.stable_file_name ? ' (newest: install commands fetch it)' : ''}
                </td>
                <td>{r.size.toLocaleString()} bytes</td>
                <td>
                  <code>{r.sha256.slice(0, 16)}…</code>
                </td>
                <td>{formatDateTime(r.created_at)}</td>
              </tr>
            ))}
          </Table>
        ) : null}
      </section>
      <section aria-labelledby="versions-title">
        <h2 id="versions-title">Versions in the fleet</h2>
        <ErrorMessage error={versions.error} prefix="Versions could not be loaded" />
        {versions.data?.length ? (
          <Table caption="Versions in the fleet" columns={['OS', 'Arch', 'Version', 'Agents']}>
            {versions.data.map((v) => (
              <tr key={`${v.os}/${v.arch}/${v.version}`}>
                <td>{v.os ?? 'unknown'}</td>
                <td>{v.arch ?? 'unknown'}</td>
                <td>{v.version ?? 'unknown'}</td>
                <td>{v.agents}</td>
              </tr>
            ))}
          </Table>
        ) : (
          <Empty>No agents yet.</Empty>
        )}
      </section>
    </>
  );
}
