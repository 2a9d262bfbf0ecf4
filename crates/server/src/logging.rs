//! Structured logs to stderr, and optionally to a daily-rotated file.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::Config;

/// Keeps the file writer alive; drop it at exit to flush.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

pub fn init(config: &Config) -> LogGuard {
    let filter = || {
        EnvFilter::try_from_env("GURURMM_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"))
    };
    let stderr = if config.log_json {
        fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    let (file, guard) = match config.log_dir() {
        Some(dir) => {
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("gururmm-server")
                .filename_suffix("log")
                .max_log_files(14)
                .build(&dir);
            match appender {
                Ok(appender) => {
                    let (writer, guard) = tracing_appender::non_blocking(appender);
                    (
                        Some(
                            fmt::layer()
                                .json()
                                .with_ansi(false)
                                .with_writer(writer)
                                .with_filter(filter())
                                .boxed(),
                        ),
                        Some(guard),
                    )
                }
                Err(e) => {
                    eprintln!(
                        "cannot open log folder {}: {e}; logging to stderr only",
                        dir.display()
                    );
                    (None, None)
                }
            }
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    LogGuard(guard)
}
