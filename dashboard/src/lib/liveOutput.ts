// The output of a running command as it streams in: `command_output` pieces are appended in seq
// order on top of a base (GET /api/commands/{id}, which holds everything up to its `live_seq`).
// Nothing here talks to the server: the caller fetches when `needsFetch` says a piece is missing.

import { isFinished, type CommandOutputPiece, type CommandRecord } from '../api';

export interface LiveOutput {
  stdout: string;
  stderr: string;
  /** The seq of the next piece to append: everything before it is in stdout/stderr. */
  next: number;
  /** Pieces that came early (a piece before them is missing), sorted by seq. */
  early: CommandOutputPiece[];
  /** The command finished and stdout/stderr are its stored result: pieces are ignored. */
  final: boolean;
}

export const EMPTY_OUTPUT: LiveOutput = { stdout: '', stderr: '', next: 0, early: [], final: false };

/** The output as a command record holds it; a finished command's record is final. */
export function outputFromRecord(c: CommandRecord): LiveOutput {
  return {
    stdout: c.stdout ?? '',
    stderr: c.stderr ?? '',
    next: (c.live_seq ?? -1) + 1,
    early: [],
    final: isFinished(c.status),
  };
}

/** Appends the early pieces that now follow on, and drops those already included. */
function drain(out: LiveOutput): LiveOutput {
  let { stdout, stderr, next } = out;
  const early: CommandOutputPiece[] = [];
  for (const p of out.early) {
    if (p.seq < next) continue;
    if (p.seq === next) {
      if (p.stream === 'stderr') stderr += p.data;
      else stdout += p.data;
      next += 1;
    } else {
      early.push(p);
    }
  }
  return { ...out, stdout, stderr, next, early };
}

/** Adds one piece: appended when it is the next one, kept aside when it came early, dropped
 * when it is already included (or the output is final). */
export function addPiece(out: LiveOutput, piece: CommandOutputPiece): LiveOutput {
  if (out.final || piece.seq < out.next || out.early.some((p) => p.seq === piece.seq)) return out;
  const early = [...out.early, piece].sort((a, b) => a.seq - b.seq);
  return drain({ ...out, early });
}

/** Whether a piece is missing (one after it arrived): GET /api/commands/{id} fills the gap. */
export function needsFetch(out: LiveOutput): boolean {
  return !out.final && out.early.length > 0;
}

/**
 * Takes a fetched record as the new base. A finished command's record replaces everything (it
 * is the stored result). A running one's is used when it holds at least what was streamed so
 * far (a fetch answered before the latest pieces is older than what is shown: kept as shown);
 * the early pieces that follow its live_seq are appended to it.
 */
export function rebase(out: LiveOutput, c: CommandRecord): LiveOutput {
  const fetched = outputFromRecord(c);
  if (fetched.final) return fetched;
  if (out.final) return out;
  if (fetched.next < out.next) return drain(out);
  return drain({ ...fetched, early: out.early });
}

/** The list endpoints send the first 500 characters: "first 500 of 108,000 characters". */
export function previewHint(shown: string | null | undefined, length: number | null | undefined): string | null {
  const have = shown?.length ?? 0;
  if (length === null || length === undefined || length <= have) return null;
  return `first ${have.toLocaleString('en-US')} of ${length.toLocaleString('en-US')} characters`;
}

/** Whether a record holds only the start of its output (fetch the command for the rest). */
export function isPreview(c: CommandRecord): boolean {
  return !!c.output_preview && (previewHint(c.stdout, c.stdout_length) !== null || previewHint(c.stderr, c.stderr_length) !== null);
}

/** The name a downloaded output gets: "<host>-<first 8 of id>-stdout.txt". */
export function downloadName(c: CommandRecord, stream: 'stdout' | 'stderr'): string {
  const host = (c.hostname ?? c.agent_id.slice(0, 8)).replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${host}-${c.id.slice(0, 8)}-${stream}.txt`;
}
