import { useMemo, useState } from 'react';
import type { Site } from '../api';
import { useApi } from '../session';
import { useAsync } from '../hooks';
import { useLiveEvents } from '../live';
import { applyAgentStatus, sortAgents, type AgentSortKey, type SortDir } from '../lib/agents';
import { LINUX_BINARY, WINDOWS_BINARY, linuxInstall, windowsInstall } from '../lib/install';
import { href, navigate } from '../lib/router';
import { AgentTable } from '../components/AgentTable';
import { ConfirmButton, CopyButton, Empty, ErrorMessage, Loading, PageHeader } from '../components/ui';
import { NameNotesForm } from './ClientsPage';

function InstallBlock({ title, text, id }: { title: string; text: string; id: string }) {
  return (
    <div className="install">
      <div className="install-head">
        <h3 id={id}>{title}</h3>
        <CopyButton text={text} label={`Copy ${title} commands`} />
      </div>
      <pre aria-labelledby={id} tabIndex={0}>
        <code>{text}</code>
      </pre>
    </div>
  );
}

export function SitePage({ id }: { id: string }) {
  const { api, user } = useApi();
  const site = useAsync<Site>(() => api.getSite(id), [api, id]);
  const agents = useAsync(() => api.listAgents({ site_id: id }), [api, id]);
  const [sort, setSort] = useState<{ key: AgentSortKey; dir: SortDir }>({ key: 'hostname', dir: 'asc' });
  const [editing, setEditing] = useState(false);
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

  return (
    <>
      <PageHeader title={`Site ${s.name}`}>
        {canEdit ? (
          <>
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
          <CopyButton text={s.site_code} label="Copy site code" />
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
      </section>

      <section aria-labelledby="install-title">
        <h2 id="install-title">Install an agent for this site</h2>
        <p className="muted">
          The agent connects back to this server ({loc.host}) and enrolls with the site code above. The server hands out the agent builds from its
          downloads folder (<code>downloads_dir</code>), where these commands expect <code>{LINUX_BINARY}</code> and <code>{WINDOWS_BINARY}</code>.
        </p>
        <div className="install-grid">
          <InstallBlock id="install-linux" title="Linux (as root)" text={linuxInstall(s.site_code, loc)} />
          <InstallBlock id="install-windows" title="Windows (PowerShell as Administrator)" text={windowsInstall(s.site_code, loc)} />
        </div>
      </section>

      <section aria-labelledby="site-agents-title">
        <h2 id="site-agents-title">Agents in this site</h2>
        <ErrorMessage error={agents.error} prefix="Agents could not be loaded" />
        {agents.data?.length === 0 ? <Empty>No agent has enrolled with this site yet. New agents appear here as soon as they connect.</Empty> : null}
        {agents.data && agents.data.length > 0 ? <AgentTable agents={shown} sort={sort} onSort={setSort} caption={`Agents in ${s.name}`} /> : null}
      </section>
    </>
  );
}
