// A command's output: each stream in a box of bounded height that follows the tail while the
// command runs (unless the reader scrolled up), with Copy and Download of the whole text. A list's
// record holds only the first 500 characters: the box says so and fetches the rest on demand.
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { isFinished, type CommandRecord } from '../api';
import { useApi } from '../session';
import { formatDateTime, formatDuration } from '../lib/format';
import { downloadName, isPreview, previewHint, type LiveOutput } from '../lib/liveOutput';
import { copyText, errorText } from './ui';

type Stream = 'stdout' | 'stderr';
const STREAM_LABEL: Record<Stream, string> = { stdout: 'Standard output', stderr: 'Standard error' };

/** Saves `text` as a file through a temporary link (no server round trip). */
export function downloadText(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function OutputStream({
  stream,
  text,
  hint,
  following,
  fullText,
  fileName,
}: {
  stream: Stream;
  text: string;
  hint: string | null;
  following: boolean;
  /** The whole text (fetched first when only a preview is shown). */
  fullText: () => Promise<string>;
  fileName: string;
}) {
  const box = useRef<HTMLPreElement>(null);
  const atEnd = useRef(true);
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  const label = STREAM_LABEL[stream];

  useLayoutEffect(() => {
    const el = box.current;
    if (el && following && atEnd.current) el.scrollTop = el.scrollHeight;
  }, [text, following]);

  useEffect(() => {
    if (!note?.ok) return;
    const t = window.setTimeout(() => setNote(null), 2000);
    return () => window.clearTimeout(t);
  }, [note]);

  const act = (what: 'copy' | 'download') =>
    fullText()
      .then(async (all) => {
        if (what === 'copy') await copyText(all);
        else downloadText(fileName, all);
        setNote({ ok: true, text: what === 'copy' ? 'Copied' : 'Downloaded' });
      })
      .catch((e: unknown) => setNote({ ok: false, text: `Could not ${what} it: ${errorText(e)}` }));

  return (
    <div className={`stream stream-${stream}`}>
      <div className="stream-head">
        <span className="stream-label">{label}</span>
        {hint ? <span className="muted small-text" data-testid="preview-hint">{hint}</span> : null}
        <button type="button" className="secondary small" aria-label={`Copy ${label.toLowerCase()}`} onClick={() => void act('copy')}>
          Copy
        </button>
        <button type="button" className="secondary small" aria-label={`Download ${label.toLowerCase()}`} onClick={() => void act('download')}>
          Download
        </button>
        <span role="status" className={note?.ok ? 'ok-text' : 'error-text'}>
          {note?.text ?? ''}
        </span>
      </div>
      <pre
        ref={box}
        className={stream}
        aria-label={label}
        aria-live="off"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          atEnd.current = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
        }}
      >
        {text}
      </pre>
    </div>
  );
}

/**
 * `live`: the streamed output of a followed command (it replaces the record's text);
 * `streams`: false for an agent that sends its output only when the command ends.
 */
export function CommandOutput({ c, live, streams = true }: { c: CommandRecord; live?: LiveOutput; streams?: boolean }) {
  const { api } = useApi();
  const [full, setFull] = useState<CommandRecord | null>(null);
  const [fetching, setFetching] = useState(false);
  const [fetchError, setFetchError] = useState<unknown>(null);
  const record = full && full.id === c.id ? full : c;
  const preview = !live && isPreview(record);
  const running = !isFinished(c.status);
  const text = live ?? { stdout: record.stdout ?? '', stderr: record.stderr ?? '' };

  async function fetchFull(): Promise<CommandRecord> {
    if (!preview) return record;
    setFetching(true);
    setFetchError(null);
    try {
      const got = await api.getCommand(c.id);
      setFull(got);
      return got;
    } catch (e) {
      setFetchError(e);
      throw e;
    } finally {
      setFetching(false);
    }
  }

  const stream = (s: Stream) =>
    text[s] ? (
      <OutputStream
        stream={s}
        text={text[s]}
        hint={preview ? previewHint(record[s], record[`${s}_length`]) : null}
        following={running}
        fullText={async () => (preview ? ((await fetchFull())[s] ?? '') : text[s])}
        fileName={downloadName(c, s)}
      />
    ) : null;

  const empty = !text.stdout && !text.stderr;
  const waiting =
    c.status === 'pending'
      ? 'Not started yet: waiting for the agent.'
      : streams
        ? 'Waiting for output…'
        : 'Running: this agent sends its output when the command ends.';
  return (
    <div className="output">
      <p className="muted small-text">
        Exit code {c.exit_code ?? '—'} · duration {formatDuration(c.duration_ms)} · sent {formatDateTime(c.sent_at)} · finished {formatDateTime(c.completed_at)}
        {c.created_by ? ` · by ${c.created_by}` : ''}
        {c.working_directory ? ` · in ${c.working_directory}` : ''}
        {c.context_files?.length ? ` · context files: ${c.context_files.join(', ')}` : ''}
      </p>
      {stream('stdout')}
      {stream('stderr')}
      {preview ? (
        <p>
          <button type="button" className="secondary small" disabled={fetching} onClick={() => void fetchFull().catch(() => {})}>
            {fetching ? 'Fetching…' : 'Show the full output'}
          </button>
        </p>
      ) : null}
      {fetchError ? (
        <div className="error" role="alert">
          The full output could not be fetched: {errorText(fetchError)}
        </div>
      ) : null}
      {empty ? <p className="muted">{running ? waiting : 'No output.'}</p> : null}
    </div>
  );
}
