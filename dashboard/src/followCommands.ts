// Following commands while they run: their `command_output` pieces are appended as they arrive,
// a missing piece (or opening a command that already runs) fetches GET /api/commands/{id} and
// continues from its live_seq, and `command_updated` fetches the record, which replaces the
// streamed text once the command finished. Used by the console and the command page.
import { useCallback, useReducer, useRef } from 'react';
import { isFinished, type CommandRecord } from './api';
import { useApi } from './session';
import { useLiveEvents, useLiveState } from './live';
import { useInterval } from './hooks';
import { addPiece, isPreview, needsFetch, outputFromRecord, rebase, EMPTY_OUTPUT, type LiveOutput } from './lib/liveOutput';

export interface Followed {
  record: CommandRecord;
  out: LiveOutput;
  /** The last fetch of the record failed (cleared by the next that works). */
  error?: unknown;
}

interface Entry extends Followed {
  fetching: boolean;
  /** Fetch again once the running fetch is answered (something changed meanwhile). */
  again: boolean;
  retryTimer?: number;
}

export interface FollowedCommands {
  get(id: string): Followed | undefined;
  /** Starts following a record (the answer of sending it, or a command opened by id). */
  follow(record: CommandRecord): void;
  /** Takes a record the page got by itself (e.g. the answer of cancelling). */
  update(record: CommandRecord): void;
  refresh(id: string): void;
}

/** `pollMs`: how often running commands are fetched anyway while the event stream is open (a
 * lost `command_updated` cannot leave one looking stuck); faster while it is not. */
export function useFollowedCommands(pollMs = 10_000): FollowedCommands {
  const { api } = useApi();
  const entries = useRef(new Map<string, Entry>());
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const liveState = useLiveState();

  const refresh = useCallback(
    (id: string) => {
      const e = entries.current.get(id);
      if (!e) return;
      if (e.fetching) {
        e.again = true;
        return;
      }
      e.fetching = true;
      e.again = false;
      window.clearTimeout(e.retryTimer);
      api.getCommand(id).then(
        (record) => {
          e.fetching = false;
          e.record = record;
          e.out = rebase(e.out, record);
          e.error = undefined;
          rerender();
          if (e.again) refresh(id);
          // Still a piece missing (the record was older than the pieces): look again shortly.
          else if (needsFetch(e.out)) e.retryTimer = window.setTimeout(() => refresh(id), 1000);
        },
        (err: unknown) => {
          e.fetching = false;
          e.error = err;
          rerender();
          if (e.again) refresh(id);
        },
      );
    },
    [api],
  );

  const follow = useCallback(
    (record: CommandRecord) => {
      if (entries.current.has(record.id)) return;
      // A list's preview needs the whole record first. Pieces that arrived before this call
      // show up as a gap at the next piece, which fetches the record then.
      const usable = !isPreview(record);
      entries.current.set(record.id, {
        record,
        out: usable ? outputFromRecord(record) : EMPTY_OUTPUT,
        fetching: false,
        again: false,
      });
      rerender();
      if (!usable) refresh(record.id);
    },
    [refresh],
  );

  const update = useCallback((record: CommandRecord) => {
    const e = entries.current.get(record.id);
    if (!e) return;
    e.record = record;
    if (!isPreview(record)) e.out = rebase(e.out, record);
    rerender();
  }, []);

  useLiveEvents((ev) => {
    if (ev.type === 'command_output') {
      const e = entries.current.get(ev.data.id);
      if (!e) return;
      const before = e.out;
      e.out = addPiece(e.out, ev.data);
      // Output means it runs, even when its `command_updated` was not seen yet.
      if (e.record.status === 'pending') e.record = { ...e.record, status: 'running' };
      if (e.out !== before) rerender();
      if (needsFetch(e.out) && !needsFetch(before)) refresh(ev.data.id);
    } else if (ev.type === 'command_updated' && entries.current.has(ev.data.id)) {
      refresh(ev.data.id);
    }
  });

  const open = [...entries.current.values()].filter((e) => !isFinished(e.record.status));
  useInterval(() => open.forEach((e) => refresh(e.record.id)), liveState === 'open' ? pollMs : 2000, open.length > 0);

  const get = useCallback((id: string): Followed | undefined => entries.current.get(id), []);
  return { get, follow, update, refresh };
}
