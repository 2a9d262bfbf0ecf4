//! Structured logs to stderr, and optionally to a rotated file (`log_rotation`, with
//! `log_max_files` kept).

use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::Config;

/// When the log file starts anew. Files are named `gururmm-server.<date>.log`, the date down
/// to the minute, hour or day (UTC); `never` writes one `gururmm-server.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    Minutely,
    Hourly,
    Daily,
    Never,
}

impl From<LogRotation> for tracing_appender::rolling::Rotation {
    fn from(r: LogRotation) -> Self {
        use tracing_appender::rolling::Rotation;
        match r {
            LogRotation::Minutely => Rotation::MINUTELY,
            LogRotation::Hourly => Rotation::HOURLY,
            LogRotation::Daily => Rotation::DAILY,
            LogRotation::Never => Rotation::NEVER,
        }
    }
}

/// Keeps the file writer alive; drop it at exit to flush.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Libraries that print whole messages at trace level: tungstenite logs every WebSocket
/// message and frame it reads or writes, and an agent's `auth` message carries its key. Their
/// trace events never reach a log, whatever `GURURMM_LOG` asks for (their debug events do).
const NO_TRACE_FROM: &[&str] = &["tungstenite", "tokio_tungstenite"];

fn below_the_cap(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() != tracing::Level::TRACE
        || !NO_TRACE_FROM.iter().any(|lib| {
            meta.target()
                .strip_prefix(lib)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// `GURURMM_LOG` (or the default), under the cap.
fn filter<S>() -> impl Filter<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    EnvFilter::try_from_env("GURURMM_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"))
        .and(filter_fn(below_the_cap))
}

pub fn init(config: &Config) -> LogGuard {
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
    // The log folder is owner-only, so each new file is private whatever its mode.
    let mut tightened = None;
    let (file, guard) = match config.log_dir() {
        Some(dir) => {
            match crate::private_files::private_dir(&dir) {
                Ok(old) => tightened = Some((dir.clone(), old)),
                Err(e) => eprintln!("cannot create log folder {}: {e}", dir.display()),
            }
            // Files past `log_max_files` are deleted when the server starts and at each
            // rotation (tracing-appender prunes then, oldest first).
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(config.log_rotation.into())
                .filename_prefix("gururmm-server")
                .filename_suffix("log")
                .max_log_files(config.log_max_files)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::callsite::Identifier;
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;
    use tracing::{Level, Metadata};

    struct Site;
    impl tracing::callsite::Callsite for Site {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unimplemented!()
        }
    }
    static SITE: Site = Site;

    fn event(target: &'static str, level: Level) -> Metadata<'static> {
        Metadata::new(
            "event",
            target,
            level,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&SITE)),
            Kind::EVENT,
        )
    }

    #[test]
    fn websocket_libraries_never_log_at_trace() {
        for target in ["tungstenite::protocol", "tokio_tungstenite", "tungstenite"] {
            assert!(!below_the_cap(&event(target, Level::TRACE)), "{target}");
            assert!(below_the_cap(&event(target, Level::DEBUG)), "{target}");
        }
        for target in ["gururmm_server::hub", "tungstenite_other", "sqlx::query"] {
            assert!(below_the_cap(&event(target, Level::TRACE)), "{target}");
        }
    }
}
