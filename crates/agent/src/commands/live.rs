//! Live output: while a command runs, pieces of its stdout and stderr go to the server as
//! `command_output`, so a technician sees them before the result.
//!
//! The pieces are read from the same capped capture the result is built from (so a stream
//! never streams more than the output cap), at most [`output_chunk::MAX_BYTES`] of UTF-8 each
//! (an incomplete character at the end waits for the next piece), at most one piece per
//! stream every [`output_chunk::INTERVAL_MS`], `seq` counting from 0 per command over both
//! streams. Best effort: a piece is handed on with `try_send` to a bounded channel only while
//! the WebSocket is connected ([`Sink::set_open`]); otherwise it is dropped. The final
//! `command_result` is unchanged and remains the record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gururmm_protocol::{output_chunk, output_stream, CommandOutput};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// Where live pieces go: the session's bounded channel, open only while a WebSocket is.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<CommandOutput>,
    open: Arc<AtomicBool>,
}

/// A sink and the receiving end the session drains. Closed until [`Sink::set_open`].
pub fn channel(capacity: usize) -> (Sink, mpsc::Receiver<CommandOutput>) {
    let (tx, rx) = mpsc::channel(capacity);
    (
        Sink {
            tx,
            open: Arc::new(AtomicBool::new(false)),
        },
        rx,
    )
}

impl Sink {
    /// Whether pieces are wanted now (a WebSocket is connected); closed, they are dropped.
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Hands a piece on, or drops it (closed, or the channel is full).
    fn offer(&self, piece: CommandOutput) {
        if !self.is_open() {
            return;
        }
        if let Err(e) = self.tx.try_send(piece) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "channel full",
                mpsc::error::TrySendError::Closed(_) => "session gone",
            };
            tracing::debug!("live output piece dropped ({why})");
        }
    }
}

/// What a pipe reader keeps: the first `cap` bytes of a stream, and how many more came.
#[derive(Default)]
pub(crate) struct Capture {
    pub(crate) bytes: Vec<u8>,
    pub(crate) omitted: u64,
}

impl Capture {
    pub(crate) fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.omitted > 0 {
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&format!(
                "[output truncated by gururmm-agent: {} more bytes not captured]",
                self.omitted
            ));
        }
        s
    }
}

pub(crate) type Shared = Arc<Mutex<Capture>>;

/// The next piece of `bytes` from `from`: (text, bytes consumed). At most `max` bytes of
/// text; an incomplete UTF-8 sequence at the end is left for later unless `last`; invalid
/// bytes become U+FFFD (each counted as the 3 bytes it takes in the text).
fn next_piece(bytes: &[u8], from: usize, max: usize, last: bool) -> (String, usize) {
    let rest = &bytes[from.min(bytes.len())..];
    let mut text = String::new();
    let mut used = 0;
    for chunk in rest.utf8_chunks() {
        for c in chunk.valid().chars() {
            if text.len() + c.len_utf8() > max {
                return (text, used);
            }
            text.push(c);
            used += c.len_utf8();
        }
        let invalid = chunk.invalid();
        if invalid.is_empty() {
            continue;
        }
        // An incomplete sequence at the very end may still be completed by the next read.
        let at_end = used + invalid.len() == rest.len();
        if at_end && !last && invalid.len() < 4 && matches!(invalid[0], 0xC2..=0xF4) {
            return (text, used);
        }
        if text.len() + '\u{FFFD}'.len_utf8() > max {
            return (text, used);
        }
        text.push('\u{FFFD}');
        used += invalid.len();
    }
    (text, used)
}

struct StreamState {
    name: &'static str,
    capture: Shared,
    /// Bytes of the capture already streamed.
    sent: usize,
    last: Option<Instant>,
}

/// Streams one command's output while it runs; see the module documentation.
pub(crate) struct Streamer {
    id: String,
    sink: Sink,
    streams: Mutex<(Vec<StreamState>, u64)>,
    /// A reader got bytes (or the command ended).
    pub(crate) wake: Notify,
}

const INTERVAL: Duration = Duration::from_millis(output_chunk::INTERVAL_MS);

impl Streamer {
    pub(crate) fn new(id: &str, sink: Sink, stdout: Shared, stderr: Shared) -> Arc<Streamer> {
        let state = |name, capture| StreamState {
            name,
            capture,
            sent: 0,
            last: None,
        };
        Arc::new(Streamer {
            id: id.to_owned(),
            sink,
            streams: Mutex::new((
                vec![
                    state(output_stream::STDOUT, stdout),
                    state(output_stream::STDERR, stderr),
                ],
                0,
            )),
            wake: Notify::new(),
        })
    }

    /// Sends one piece per stream whose interval has passed; returns when the next piece is
    /// allowed, if one is waiting.
    fn pump(&self, last: bool) -> Option<Instant> {
        let mut guard = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let (streams, seq) = &mut *guard;
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for s in streams.iter_mut() {
            let (text, used, more) = {
                let c = s.capture.lock().unwrap_or_else(|e| e.into_inner());
                if s.sent >= c.bytes.len() {
                    continue;
                }
                if let Some(at) = s.last.map(|t| t + INTERVAL).filter(|at| *at > now) {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                let (text, used) = next_piece(&c.bytes, s.sent, output_chunk::MAX_BYTES, last);
                (text, used, s.sent + used < c.bytes.len())
            };
            if used == 0 {
                continue;
            }
            s.sent += used;
            s.last = Some(now);
            if more {
                let at = now + INTERVAL;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            self.sink.offer(CommandOutput {
                id: self.id.clone(),
                stream: s.name.to_owned(),
                seq: *seq,
                data: text,
            });
            *seq += 1;
        }
        next
    }

    /// Runs until `done` turns true: sends pieces as output arrives, within the rate limit.
    pub(crate) async fn run(self: Arc<Self>, done: Arc<AtomicBool>) {
        loop {
            self.wake.notified().await;
            if done.load(Ordering::SeqCst) {
                return;
            }
            while let Some(at) = self.pump(false) {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    // Woken while waiting: only the end matters here.
                    _ = self.wake.notified() => {}
                }
                if done.load(Ordering::SeqCst) {
                    return;
                }
            }
        }
    }

    /// The command ended: sends what is left when one more piece per stream covers it,
    /// waiting at most one interval for the rate limit (the result must not wait long).
    pub(crate) async fn finish(&self) {
        if !self.sink.is_open() {
            // Nothing would go out (no WebSocket): the result must not wait for it.
            return;
        }
        let wait = {
            let guard = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let mut wait: Option<Instant> = None;
            for s in guard.0.iter() {
                let len = s
                    .capture
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .bytes
                    .len();
                let left = len.saturating_sub(s.sent);
                if left == 0 || left > output_chunk::MAX_BYTES {
                    // Nothing left, or more than one piece behind (the result carries it).
                    continue;
                }
                if let Some(at) = s.last.map(|t| t + INTERVAL).filter(|at| *at > now) {
                    wait = Some(wait.map_or(at, |w| w.max(at)));
                }
            }
            wait
        };
        if let Some(at) = wait {
            tokio::time::sleep_until(at).await;
        }
        self.pump(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_never_split_a_character_and_stay_under_the_limit() {
        let text = "a\u{e9}\u{20ac}\u{1F600}b".repeat(50);
        let bytes = text.as_bytes();
        let mut from = 0;
        let mut joined = String::new();
        while from < bytes.len() {
            let (piece, used) = next_piece(bytes, from, 7, false);
            assert!(piece.len() <= 7);
            assert!(used > 0);
            assert!(!piece.contains('\u{FFFD}'));
            joined.push_str(&piece);
            from += used;
        }
        assert_eq!(joined, text);
    }

    #[test]
    fn an_incomplete_character_at_the_end_waits_unless_last() {
        let bytes = "x\u{20ac}".as_bytes();
        let partial = &bytes[..2];
        assert_eq!(next_piece(partial, 0, 100, false), ("x".to_owned(), 1));
        assert_eq!(
            next_piece(partial, 0, 100, true),
            ("x\u{FFFD}".to_owned(), 2)
        );
        // Invalid bytes in the middle become U+FFFD and count in the limit.
        let bad = b"a\xffb";
        assert_eq!(next_piece(bad, 0, 100, false), ("a\u{FFFD}b".to_owned(), 3));
        assert_eq!(next_piece(bad, 0, 3, false), ("a".to_owned(), 1));
        let bad_end = b"a\xff";
        assert_eq!(
            next_piece(bad_end, 0, 100, false),
            ("a\u{FFFD}".to_owned(), 2)
        );
    }
}
