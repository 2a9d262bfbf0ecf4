//! Logs: ASCII only, to stderr and to a daily-rotated file in the log folder.

use std::io::{self, Write};
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Replaces every non-ASCII character (and control characters other than newline and tab)
/// with `?`, so log lines stay plain ASCII whatever a hostname, path or error contains.
pub fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && (!c.is_ascii_control() || c == '\n' || c == '\t') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A writer that turns whatever it is given into ASCII before passing it on.
pub struct AsciiWriter<W: Write>(W);

impl<W: Write> Write for AsciiWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(ascii(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Wraps a [`MakeWriter`] so everything it writes is ASCII.
pub struct MakeAscii<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MakeAscii<M> {
    type Writer = AsciiWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        AsciiWriter(self.0.make_writer())
    }
}

/// Sets up logging to stderr and, when `log_dir` can be created, to
/// `log_dir/gururmm-agent.log.YYYY-MM-DD` (keeping `keep` files). The returned guard flushes
/// the file on drop. A log folder that cannot be used is reported on stderr and skipped.
pub fn init(level: &str, log_dir: Option<&Path>, keep: usize) -> Option<WorkerGuard> {
    let filter = || EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(MakeAscii(io::stderr))
        .with_filter(filter());
    let mut guard = None;
    let file_layer = log_dir.and_then(|dir| {
        let appender = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                tracing_appender::rolling::Builder::new()
                    .rotation(tracing_appender::rolling::Rotation::DAILY)
                    .filename_prefix("gururmm-agent.log")
                    .max_log_files(keep)
                    .build(dir)
                    .map_err(|e| e.to_string())
            });
        match appender {
            Ok(appender) => {
                let (writer, g) = tracing_appender::non_blocking(appender);
                guard = Some(g);
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(MakeAscii(writer))
                        .with_filter(filter()),
                )
            }
            Err(e) => {
                eprintln!(
                    "gururmm-agent: cannot log to {}: {}; logging to stderr only",
                    ascii(&dir.display().to_string()),
                    ascii(&e)
                );
                None
            }
        }
    });
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_becomes_question_marks() {
        assert_eq!(ascii("caf\u{e9} \u{2713} ok"), "caf? ? ok");
        assert_eq!(ascii("a\u{1b}[31mb\n"), "a?[31mb\n");
    }

    #[test]
    fn writer_converts_split_multibyte_sequences() {
        let mut out = Vec::new();
        {
            let mut w = AsciiWriter(&mut out);
            let bytes = "x\u{e9}y".as_bytes();
            w.write_all(&bytes[..2]).unwrap();
            w.write_all(&bytes[2..]).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.is_ascii());
        assert!(text.starts_with('x') && text.ends_with('y'));
    }
}
