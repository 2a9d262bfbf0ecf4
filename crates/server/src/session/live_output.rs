//! Live command output: the pieces (`command_output`) an agent streams while a command runs.
//! They are kept (so a page opened in the middle of a run shows what came before) and relayed
//! to every node's dashboard streams as `command_output` events.
//!
//! - Off the socket: a piece is queued without waiting; a full queue drops it (counted). Pieces
//!   are best effort by design: the final `command_result` carries the whole output and is the
//!   record, so a lost piece costs only liveness.
//! - Written in batches, one transaction each, like metrics.
//! - Hostile input: the stream must be `stdout` or `stderr`, the text is cleaned of NUL bytes
//!   and cut to [`output_chunk::MAX_BYTES`], a piece is kept only for a command running on the
//!   agent that sent it, and what one command streams is capped at `max_output_bytes` per
//!   stream, as its result is.
//! - Pieces of finished commands are removed by the upkeep.

use std::collections::HashMap;
use std::sync::Mutex;

use gururmm_protocol::{output_chunk, output_stream, CommandOutput};
use tokio::sync::mpsc;

use super::deferred::DropCounter;
use super::sanitize;
use crate::db::OutputPiece;
use crate::events::Event;
use crate::state::AppState;

/// Most pieces in one batch.
const BATCH_PIECES: usize = 500;
/// Commands whose streamed bytes are tracked at once; past this the count starts over (the
/// agent keeps its own cap; this one only stops a hostile agent).
const TRACKED_COMMANDS: usize = 10_000;

pub struct LiveOutput {
    tx: mpsc::Sender<OutputPiece>,
    rx: Mutex<Option<mpsc::Receiver<OutputPiece>>>,
    dropped: DropCounter,
}

impl LiveOutput {
    pub fn new(capacity: usize) -> LiveOutput {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        LiveOutput {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: DropCounter::default(),
        }
    }

    /// Starts the writer (once).
    pub fn start(state: &AppState) {
        let rx = state
            .live_output
            .rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            tokio::spawn(run(state.clone(), rx));
        }
    }

    /// Takes a piece from `agent_id`'s socket without waiting.
    pub fn queue(&self, agent_id: &str, piece: CommandOutput) {
        let Some(piece) = clean(agent_id, piece) else {
            return;
        };
        if self.tx.try_send(piece).is_err() {
            self.dropped.record("live output pieces");
        }
    }

    /// Pieces dropped because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.total()
    }
}

/// The piece bounded and cleaned, or None when it cannot be one.
fn clean(agent_id: &str, mut p: CommandOutput) -> Option<OutputPiece> {
    if p.stream != output_stream::STDOUT && p.stream != output_stream::STDERR {
        tracing::debug!(agent_id, stream = %sanitize::for_log(&p.stream), "output piece of an unknown stream ignored");
        return None;
    }
    let seq = i64::try_from(p.seq).ok()?;
    if p.id.len() > 64 {
        return None;
    }
    sanitize::no_nul(&mut p.data);
    if p.data.len() > output_chunk::MAX_BYTES {
        let mut cut = output_chunk::MAX_BYTES;
        while !p.data.is_char_boundary(cut) {
            cut -= 1;
        }
        p.data.truncate(cut);
    }
    Some(OutputPiece {
        agent_id: agent_id.to_owned(),
        command_id: p.id,
        seq,
        stream: p.stream,
        data: p.data,
    })
}

async fn run(state: AppState, mut rx: mpsc::Receiver<OutputPiece>) {
    // Bytes kept per (command, stream), to hold each to the output cap.
    let mut streamed: HashMap<(String, String), usize> = HashMap::new();
    let cap = state.config.max_output_bytes;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_PIECES {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if streamed.len() > TRACKED_COMMANDS {
            streamed.clear();
        }
        batch.retain(|p| {
            let total = streamed
                .entry((p.command_id.clone(), p.stream.clone()))
                .or_default();
            *total += p.data.len();
            *total <= cap
        });
        if batch.is_empty() {
            continue;
        }
        match state.store.insert_output_pieces(&batch).await {
            Ok(stored) => {
                for (piece, kept) in batch.into_iter().zip(stored) {
                    if kept {
                        state.publish(Event::CommandOutput {
                            id: piece.command_id,
                            agent_id: piece.agent_id,
                            stream: piece.stream,
                            seq: piece.seq,
                            data: piece.data,
                        });
                    }
                }
            }
            // Best effort: the result still brings the whole output.
            Err(e) => {
                tracing::warn!(error = %e, pieces = batch.len(), "storing live output failed; pieces dropped")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(stream: &str, data: &str) -> CommandOutput {
        CommandOutput {
            id: "c".into(),
            stream: stream.into(),
            seq: 0,
            data: data.into(),
        }
    }

    #[test]
    fn unknown_streams_are_refused_and_text_is_bounded_and_cleaned() {
        assert!(clean("a", piece("stdin", "x")).is_none());
        let long = "é".repeat(3000); // 6000 bytes
        let p = clean("a", piece("stdout", &long)).unwrap();
        assert!(p.data.len() <= output_chunk::MAX_BYTES);
        assert!(p.data.chars().all(|c| c == 'é'));
        let p = clean("a", piece("stderr", "a\0b")).unwrap();
        assert_eq!(p.data, "a\u{fffd}b");
    }
}
