import { useMemo, useState, type ReactNode } from 'react';
import type { EnrollmentToken, Site } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { applyAgentStatus, sortAgents, type AgentSortKey, type SortDir } from '../lib/agents';
import { LINUX_BINARY, WINDOWS_BINARY, linuxInstall, windowsInstall } from '../lib/install';
import { publishCommand, publishedBuild, type InstallOs } from '../lib/releases';
import type { Release } from '../api';
import { href, navigate } from '../lib/router';
import { AgentTable } from '../components/AgentTable';
import { ConfirmButton, CopyButton, Empty, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';
import { formatDateTime } from '../lib/format';
import { NameNotesForm } from './ClientsPage';

/** Whether the build this OS's command fetches is published; how to publish one when not. */
function BuildState({ releases, os }: { releases: Release[] | undefined; os: InstallOs }) {
  if (!releases) return null;
  const build = publishedBuild(releases, os);
  if (build) {
    return (
      <p className="muted" data-testid={`build-${os}`}>
        Build {build.version} is published ({build.size.toLocaleString()} bytes).
      </p>
    );
  }
  return (
    <div className="card warning" role="note" data-testid={`publish-hint-${os}`}>
      <p>
        <strong>No {os === 'linux' ? 'Linux' : 'Windows'} agent build is published on this server yet</strong>, so this command would fail to download it. Publish
        one on the server first (signed with the release key; <code>./scripts/serve.sh</code> does it for Linux in development):
      </p>
      <p>
        <code>{publishCommand(os)}</code>
      </p>
    </div>
  );
}

function InstallBlock({ title, text, id, children }: { title: string; text: string; id: string; children?: ReactNode }) {
  return (
    <div className="install">
      <div className="install-head">
        <h3 id={id}>{title}</h3>
        <CopyButton text={text} label={`Copy ${title} commands`} />
      </div>
      {children}
      <pre aria-labelledby={id} tabIndex={0}>
        <code>{text}</code>
      </pre>
    </div>
  );
}

/**
 * Enrollment tokens: a grmt_ token admits a limited number of machines until it expires, so
 * it can be handed out where the site code should not be. "Create install token" makes one
 * and puts it into the install commands below (its secret is shown this once only).
 */
function Tokens({ siteId, onToken }: { siteId: string; onToken: (secret: string) => void }) {
  const { api } = useApi();
  const tokens = useAsync<EnrollmentToken[]>(() => api.listSiteTokens(siteId), [api, siteId]);
  const [hours, setHours] = useState(72);
  const [uses, setUses] = useState(1);
  const [secret, setSecret] = useState<string | null>(null);
  const create = useAction(async () => {
    const made = await api.createSiteToken(siteId, { expires_in_hours: hours, max_uses: uses });
    setSecret(made.secret);
    onToken(made.secret);
    tokens.reload();
  });
  return (
    <section aria-labelledby="tokens-title" className="card">
      <h2 id="tokens-title">Enrollment tokens</h2>
      <p className="muted">A token enrolls at most its number of machines before it expires; agents use it where the site code goes.</p>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <div className="field">
          <label htmlFor="token-hours">Expires after (hours)</label>
          <input id="token-hours" type="number" min={1} max={8760} value={hours} onChange={(e) => setHours(Number(e.target.value))} />
        </div>
        <div className="field">
          <label htmlFor="token-uses">Machines</label>
          <input id="token-uses" type="number" min={1} max={10000} value={uses} onChange={(e) => setUses(Number(e.target.value))} />
        </div>
        <button type="submit" className="primary" disabled={create.busy}>
          {create.busy ? 'Creating…' : 'Create install token'}
        </button>
      </form>
      <ErrorMessage error={create.error} prefix="The token could not be created" />
      {secret ? (
        <p role="status">
          New token (shown once, now in the install commands below): <code data-testid="new-token">{secret}</code> <CopyButton text={secret} label="Copy token" />
        </p>
      ) : null}
      <ErrorMessage error={tokens.error} prefix="Tokens could not be loaded" />
      {tokens.data && tokens.data.length > 0 ? (
        <Table caption="Enrollment tokens" columns={['Token', 'Uses', 'Expires', 'State', '']}>
          {tokens.data.map((t) => (
            <tr key={t.id}>
              <td>
                <code>{t.hint}…</code>
              </td>
              <td>
                {t.uses} of {t.max_uses}
              </td>
              <td>{formatDateTime(t.expires_at)}</td>
              <td>{t.revoked ? 'revoked' : t.usable ? 'usable' : 'expired or used up'}</td>
              <td>
                {t.revoked ? null : (
                  <ConfirmButton
                    label="Revoke"
                    danger
                    title="Revoke this token?"
                    message={<p>Machines can no longer enroll with it. Machines it enrolled keep their own keys.</p>}
                    confirmLabel="Revoke"
                    onConfirm={async () => {
                      await api.revokeSiteToken(siteId, t.id);
                      tokens.reload();
                    }}
                  />
                )}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
    </section>
  );
}

export function SitePage({ id }: { id: string }) {
  const { api, user } = useApi();
  const site = useAsync<Site>(() => api.getSite(id), [api, id]);
  const agents = useAsync(() => api.listAgents({ site_id: id }), [api, id]);
  const releases = useAsync<Release[]>(() => api.listReleases(), [api]);
  const [sort, setSort] = useState<{ key: AgentSortKey; dir: SortDir }>({ key: 'hostname', dir: 'asc' });
  const [editing, setEditing] = useState(false);
  const [installToken, setInstallToken] = useState<string | null>(null);
  const canEdit = user.role !== 'viewer';
  const shown = useMemo(() => sortAgents(agents.data ?? [], sort.key, sort.dir), [agents.data, sort]);

  useLiveEvents((e) => {
    if (e.type !== 'agent_status') return;
    if (agents.data?.some((a) => a.id === e.data.agent_id)) {
      agents.setData((list) => list && applyAgentStatus(list, e.data.agent_id, e.data.online));
    } else {
      agents.reload();
    }
  });

  if (site.error && !site.data) {
    return (
      <>
        <PageHeader title="Site" />
        <ErrorMessage error={site.error} prefix="The site could not be loaded" />
        <p>
          <a href={href('/clients')}>Back to clients &amp; sites</a>
        </p>
      </>
    );
  }
  if (!site.data) return <Loading what="Loading site" />;
  const s = site.data;
  const loc = { protocol: window.location.protocol, host: window.location.host };
  const enrollWith = installToken ?? s.site_code;

  return (
    <>
      <PageHeader title={`Site ${s.name}`}>
        {canEdit ? (
          <>
            <a className="button small" href={href('/run', { site: s.id })}>
              Run script on this site
            </a>
            <button type="button" className="secondary small" onClick={() => setEditing((v) => !v)} aria-expanded={editing}>
              Edit
            </button>
            <ConfirmButton
              label="Delete site"
              danger
              title={`Delete site ${s.name}?`}
              message={<p>The site code {s.site_code} stops working for new agents. This cannot be undone.</p>}
              confirmLabel="Delete site"
              onConfirm={async () => {
                await api.deleteSite(s.id);
                navigate('/clients');
              }}
            />
          </>
        ) : null}
      </PageHeader>
      <p className="muted">
        Client: <strong>{s.client_name}</strong> · {s.agent_count} agent(s){s.notes ? ` · ${s.notes}` : ''} · <a href={href('/clients')}>All clients &amp; sites</a>
      </p>
      {editing ? (
        <NameNotesForm
          idPrefix="edit-site"
          initial={s}
          submitLabel="Save site"
          onSubmit={async (v) => {
            const updated = await api.updateSite(s.id, v);
            site.setData(() => ({ ...s, ...updated }));
            setEditing(false);
          }}
        />
      ) : null}

      <section aria-labelledby="code-title" className="card">
        <h2 id="code-title">Site code</h2>
        <p>Agents enroll into this site with its code. Anyone holding it can enroll a machine here: share it only with the people installing agents.</p>
        <div className="site-code-row">
          <code className="site-code" data-testid="site-code">
            {s.site_code}
          </code>
          {canEdit ? <CopyButton text={s.site_code} label="Copy site code" /> : <span className="muted">Only technicians see the site code.</span>}
          {canEdit ? (
            <ConfirmButton
              label="Regenerate code"
              title="Regenerate the site code?"
              message={
                <p>
                  The current code <code>{s.site_code}</code> stops working for new installations. Agents already enrolled keep working with their own keys.
                </p>
              }
              confirmLabel="Regenerate"
              onConfirm={async () => {
                const updated = await api.regenerateSiteKey(s.id);
                site.setData(() => ({ ...s, ...updated }));
              }}
            />
          ) : null}
        </div>
        <p data-testid="require-approval">
          New machines: {s.require_approval ? <strong>wait for a technician&apos;s approval</strong> : 'admitted at once'} (a machine claiming to be an existing
          agent always waits).{' '}
          {canEdit ? (
            <ConfirmButton
              label={s.require_approval ? 'Admit new machines at once' : 'Require approval'}
              title={s.require_approval ? 'Admit new machines at once?' : 'Require approval for new machines?'}
              message={<p>{s.require_approval ? 'New machines enrolling here become agents at once.' : 'Every new machine enrolling here waits until a technician approves it.'}</p>}
              confirmLabel="Save"
              onConfirm={async () => {
                const updated = await api.updateSite(s.id, { name: s.name, notes: s.notes, require_approval: !s.require_approval });
                site.setData(() => ({ ...s, ...updated }));
              }}
            />
          ) : null}
        </p>
      </section>

      {canEdit ? <Tokens siteId={s.id} onToken={setInstallToken} /> : null}

      {canEdit ? (
        <section aria-labelledby="install-title">
          <h2 id="install-title">Install an agent for this site</h2>
          <p className="muted">
            The agent connects back to this server ({loc.host}) and enrolls with {installToken ? 'the install token created above' : 'the site code above'}. The
            server hands out the agent builds from its downloads folder (<code>downloads_dir</code>), where these commands expect <code>{LINUX_BINARY}</code> and{' '}
            <code>{WINDOWS_BINARY}</code>.
          </p>
          <div className="install-grid">
            <InstallBlock id="install-linux" title="Linux (as root)" text={linuxInstall(enrollWith, loc)}>
              <BuildState releases={releases.data} os="linux" />
            </InstallBlock>
            <InstallBlock id="install-windows" title="Windows (PowerShell as Administrator)" text={windowsInstall(enrollWith, loc)}>
              <BuildState releases={releases.data} os="windows" />
            </InstallBlock>
          </div>
        </section>
      ) : null}

      <section aria-labelledby="site-agents-title">
        <h2 id="site-agents-title">Agents in this site</h2>
        <ErrorMessage error={agents.error} prefix="Agents could not be loaded" />
        {agents.data?.length === 0 ? <Empty>No agent has enrolled with this site yet. New agents appear here as soon as they connect.</Empty> : null}
        {agents.data && agents.data.length > 0 ? <AgentTable agents={shown} sort={sort} onSort={setSort} caption={`Agents in ${s.name}`} /> : null}
      </section>
    </>
  );
}
