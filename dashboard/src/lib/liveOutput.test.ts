import { describe, expect, it } from 'vitest';
import type { CommandOutputPiece, CommandRecord } from '../api';
import { EMPTY_OUTPUT, addPiece, downloadName, isPreview, needsFetch, outputFromRecord, previewHint, rebase } from './liveOutput';

const piece = (seq: number, data: string, stream: 'stdout' | 'stderr' = 'stdout'): CommandOutputPiece => ({ id: 'c1', agent_id: 'a1', stream, seq, data });

function record(over: Partial<CommandRecord> = {}): CommandRecord {
  return {
    id: '1a2b3c4d-0000-4000-8000-000000000001',
    agent_id: 'a1',
    hostname: 'host a',
    command: 'echo',
    command_type: 'shell',
    status: 'running',
    created_at: '2026-12-04T18:00:00Z',
    created_by: null,
    sent_at: null,
    completed_at: null,
    duration_ms: null,
    elevated: false,
    exit_code: null,
    interpreter: null,
    working_directory: null,
    context_files: null,
    job_id: null,
    timeout_seconds: 300,
    stdout: null,
    stderr: null,
    stdout_length: null,
    stderr_length: null,
    output_preview: false,
    live_seq: null,
    ...over,
  };
}

describe('addPiece', () => {
  it('appends pieces in seq order to their own stream', () => {
    let out = EMPTY_OUTPUT;
    out = addPiece(out, piece(0, 'line 1\n'));
    out = addPiece(out, piece(1, 'oops\n', 'stderr'));
    out = addPiece(out, piece(2, 'line 2\n'));
    expect(out).toMatchObject({ stdout: 'line 1\nline 2\n', stderr: 'oops\n', next: 3, early: [] });
    expect(needsFetch(out)).toBe(false);
  });

  it('keeps a piece that came early aside, says a fetch is needed, and appends it once the gap is filled', () => {
    let out = addPiece(EMPTY_OUTPUT, piece(0, 'a'));
    out = addPiece(out, piece(2, 'c'));
    expect(out.stdout).toBe('a');
    expect(needsFetch(out)).toBe(true);
    out = addPiece(out, piece(1, 'b'));
    expect(out.stdout).toBe('abc');
    expect(out.next).toBe(3);
    expect(needsFetch(out)).toBe(false);
  });

  it('drops a piece seen before, early or already included', () => {
    let out = addPiece(EMPTY_OUTPUT, piece(0, 'a'));
    out = addPiece(out, piece(0, 'a'));
    out = addPiece(out, piece(3, 'd'));
    out = addPiece(out, piece(3, 'd'));
    expect(out.stdout).toBe('a');
    expect(out.early).toHaveLength(1);
  });

  it('ignores pieces once the output is the final record', () => {
    const out = outputFromRecord(record({ status: 'completed', stdout: 'done\n' }));
    expect(addPiece(out, piece(0, 'late'))).toBe(out);
  });
});

describe('rebase', () => {
  it('continues a running command from its live_seq (a page opened in the middle)', () => {
    // Pieces 3 and 4 arrived while the record (up to piece 2) was being fetched.
    let out = addPiece(EMPTY_OUTPUT, piece(3, 'line 4\n'));
    out = addPiece(out, piece(4, 'line 5\n'));
    expect(needsFetch(out)).toBe(true);
    out = rebase(out, record({ stdout: 'line 1\nline 2\nline 3\n', live_seq: 2 }));
    expect(out.stdout).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    expect(out.next).toBe(5);
    expect(needsFetch(out)).toBe(false);
  });

  it('drops early pieces the fetched record already holds', () => {
    let out = addPiece(EMPTY_OUTPUT, piece(1, 'b'));
    out = rebase(out, record({ stdout: 'ab', live_seq: 1 }));
    expect(out).toMatchObject({ stdout: 'ab', next: 2, early: [] });
  });

  it('keeps what is shown when the fetched record is older than it', () => {
    let out = addPiece(EMPTY_OUTPUT, piece(0, 'a'));
    out = addPiece(out, piece(1, 'b'));
    out = rebase(out, record({ stdout: 'a', live_seq: 0 }));
    expect(out).toMatchObject({ stdout: 'ab', next: 2 });
  });

  it('a running command with nothing streamed yet starts at seq 0', () => {
    const out = rebase(EMPTY_OUTPUT, record({ live_seq: null }));
    expect(out).toMatchObject({ stdout: '', stderr: '', next: 0, final: false });
  });

  it('the finished record replaces the streamed text, and an older answer cannot undo it', () => {
    let out = addPiece(EMPTY_OUTPUT, piece(0, 'streamed'));
    out = rebase(out, record({ status: 'completed', stdout: 'stored\n', stderr: '' }));
    expect(out).toMatchObject({ stdout: 'stored\n', final: true });
    expect(rebase(out, record({ stdout: 'streamed', live_seq: 5 }))).toBe(out);
  });
});

describe('previewHint', () => {
  it('says how much of the output is shown when it is cut', () => {
    expect(previewHint('x'.repeat(500), 108000)).toBe('first 500 of 108,000 characters');
  });
  it('says nothing when the whole output is shown or the length is unknown', () => {
    expect(previewHint('abc', 3)).toBeNull();
    expect(previewHint('abc', null)).toBeNull();
    expect(previewHint(null, undefined)).toBeNull();
  });
});

describe('isPreview', () => {
  it('is true only for a record marked as a preview whose output is longer than shown', () => {
    expect(isPreview(record({ output_preview: true, stdout: 'x'.repeat(500), stdout_length: 1000 }))).toBe(true);
    expect(isPreview(record({ output_preview: true, stdout: 'short', stdout_length: 5 }))).toBe(false);
    expect(isPreview(record({ output_preview: false, stdout: 'x'.repeat(500), stdout_length: 1000 }))).toBe(false);
  });
});

describe('downloadName', () => {
  it('names the file after the host, the command and the stream', () => {
    expect(downloadName(record(), 'stderr')).toBe('host_a-1a2b3c4d-stderr.txt');
  });
});
