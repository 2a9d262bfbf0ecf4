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
    // The log folder is owner-only, so each day's new file is private whatever its mode.
    let mut tightened = None;
    let (file, guard) = match config.log_dir() {
        Some(dir) => {
            match crate::private_files::private_dir(&dir) {
                Ok(old) => tightened = Some((dir.clone(), old)),
                Err(e) => eprintln!("cannot create log folder {}: {e}", dir.display()),
            }
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
    if let Some((dir, old)) = tightened {
        crate::private_files::log_tightened(&dir, old);
        if let Err(e) = crate::private_files::secure_files_in(&dir) {
            tracing::warn!("cannot tighten the log files in {}: {e}", dir.display());
        }
    }
    LogGuard(guard)
}
