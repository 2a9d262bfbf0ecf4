import { useState, type FormEvent } from 'react';
import type { Client, Site } from '../api';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { href } from '../lib/router';
import { ConfirmButton, Dialog, Empty, ErrorMessage, Loading, PageHeader, Table } from '../components/ui';

/** Name + notes form used to create and to edit clients and sites. */
export function NameNotesForm({
  initial,
  submitLabel,
  onSubmit,
  idPrefix,
  children,
}: {
  initial?: { name: string; notes: string | null };
  submitLabel: string;
  onSubmit: (v: { name: string; notes?: string }) => Promise<unknown>;
  idPrefix: string;
  children?: React.ReactNode;
}) {
  const [name, setName] = useState(initial?.name ?? '');
  const [notes, setNotes] = useState(initial?.notes ?? '');
  const { run, busy, error } = useAction(onSubmit);
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (await run({ name: name.trim(), notes: notes.trim() || undefined }) && !initial) {
      setName('');
      setNotes('');
    }
  }
  return (
    <form className="inline-form" onSubmit={submit}>
      {children}
      <div className="field">
        <label htmlFor={`${idPrefix}-name`}>Name</label>
        <input id={`${idPrefix}-name`} required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field grow">
        <label htmlFor={`${idPrefix}-notes`}>Notes</label>
        <input id={`${idPrefix}-notes`} maxLength={2000} value={notes} onChange={(e) => setNotes(e.target.value)} />
      </div>
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Saving…' : submitLabel}
      </button>
      <ErrorMessage error={error} />
    </form>
  );
}

function EditButton({ title, initial, onSave }: { title: string; initial: { name: string; notes: string | null }; onSave: (v: { name: string; notes?: string }) => Promise<unknown> }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" className="secondary small" onClick={() => setOpen(true)}>
        Edit
      </button>
      <Dialog open={open} title={title} onClose={() => setOpen(false)}>
        <NameNotesForm
          idPrefix="edit"
          initial={initial}
          submitLabel="Save"
          onSubmit={async (v) => {
            await onSave(v);
            setOpen(false);
          }}
        />
        <div className="dialog-actions">
          <button type="button" className="secondary" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      </Dialog>
    </>
  );
}

export function ClientsPage() {
  const { api, user } = useApi();
  const clients = useAsync<Client[]>(() => api.listClients(), [api]);
  const sites = useAsync<Site[]>(() => api.listSites(), [api]);
  const [siteClient, setSiteClient] = useState('');
  const canEdit = user.role !== 'viewer';
  const reloadAll = () => {
    clients.reload();
    sites.reload();
  };

  return (
    <>
      <PageHeader title="Clients & sites" />
      {!canEdit ? <p className="notice">Your role (viewer) can look but not change clients and sites.</p> : null}

      <section aria-labelledby="clients-title">
        <h2 id="clients-title">Clients</h2>
        {canEdit ? (
          <NameNotesForm idPrefix="new-client" submitLabel="Create client" onSubmit={async (v) => { await api.createClient(v); reloadAll(); }}>
            <span className="form-title">New client</span>
          </NameNotesForm>
        ) : null}
        <ErrorMessage error={clients.error} prefix="Clients could not be loaded" />
        {clients.loading && !clients.data ? <Loading what="Loading clients" /> : null}
        {clients.data?.length === 0 ? <Empty>No clients yet.</Empty> : null}
        {clients.data && clients.data.length > 0 ? (
          <Table caption="Clients" columns={['Name', 'Notes', { label: 'Sites', className: 'num' }, { label: 'Agents', className: 'num' }, 'Actions']}>
                {clients.data.map((c) => (
                  <tr key={c.id}>
                    <td>{c.name}</td>
                    <td className="muted">{c.notes}</td>
                    <td className="num">{c.site_count}</td>
                    <td className="num">{c.agent_count}</td>
                    <td>
<div className="row-actions">
                      {canEdit ? (
                        <>
                          <a className="button small" href={href('/run', { client: c.id })} aria-label={`Run script on client ${c.name}`}>
                            Run script
                          </a>
                          <EditButton title={`Edit client ${c.name}`} initial={c} onSave={async (v) => { await api.updateClient(c.id, v); reloadAll(); }} />
                          <ConfirmButton
                            label="Delete"
                            danger
                            title={`Delete client ${c.name}?`}
                            message={<p>This deletes the client {c.name} and its {c.site_count} site(s). Agents in those sites become unassigned or are removed, depending on the server.</p>}
                            confirmLabel="Delete client"
                            onConfirm={async () => { await api.deleteClient(c.id); reloadAll(); }}
                          />
                        </>
                      ) : null}
                    </div>
</td>
                  </tr>
                ))}
          </Table>
        ) : null}
      </section>

      <section aria-labelledby="sites-title">
        <h2 id="sites-title">Sites</h2>
        {canEdit && clients.data && clients.data.length > 0 ? (
          <NameNotesForm
            idPrefix="new-site"
            submitLabel="Create site"
            onSubmit={async (v) => {
              if (!siteClient) throw new Error('choose the client this site belongs to');
              const site = await api.createSite({ client_id: siteClient, ...v });
              reloadAll();
              window.location.hash = `/sites/${site.id}`;
            }}
          >
            <span className="form-title">New site</span>
            <div className="field">
              <label htmlFor="new-site-client">Client</label>
              <select id="new-site-client" required value={siteClient} onChange={(e) => setSiteClient(e.target.value)}>
                <option value="">Choose a client</option>
                {clients.data.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name}
                  </option>
                ))}
              </select>
            </div>
          </NameNotesForm>
        ) : null}
        <ErrorMessage error={sites.error} prefix="Sites could not be loaded" />
        {sites.data?.length === 0 ? <Empty>No sites yet{canEdit ? ': create a client, then a site for it' : ''}.</Empty> : null}
        {sites.data && sites.data.length > 0 ? (
          <Table caption="Sites" columns={['Site', 'Client', 'Site code', { label: 'Agents', className: 'num' }, 'Notes']}>
                {sites.data.map((s) => (
                  <tr key={s.id}>
                    <td>
                      <a href={href(`/sites/${s.id}`)}>{s.name}</a>
                    </td>
                    <td>{s.client_name}</td>
                    <td>
                      <code>{s.site_code}</code>
                    </td>
                    <td className="num">{s.agent_count}</td>
                    <td className="muted">{s.notes}</td>
                  </tr>
                ))}
          </Table>
        ) : null}
      </section>
    </>
  );
}
