//! Server settings: built-in defaults, then a TOML file (`--config`), then `GURURMM_*`
//! environment variables (and `DATABASE_URL`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to serve on.
    pub listen: SocketAddr,
    /// Folder for the embedded database, the generated JWT secret and logs.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/gururmm.db`.
    pub database_url: String,
    /// Secret for signing JWTs. Empty: generated on first start and kept in the data folder.
    pub jwt_secret: String,
    /// Origins allowed by CORS. Empty (the default): same-origin only.
    pub cors_origins: Vec<String>,
    /// Whether `POST /api/auth/register` may create users (as technicians).
    pub allow_registration: bool,
    /// Folder holding the dashboard build (`index.html`); served at `/` when present.
    pub dashboard_dir: PathBuf,
    /// Folder of agent builds served at `/downloads/`.
    pub downloads_dir: PathBuf,
    /// Log to a daily-rotated file in this folder as well as stderr.
    pub log_dir: Option<PathBuf>,
    /// Log lines as JSON.
    pub log_json: bool,

    pub auth_timeout_seconds: u64,
    pub ping_interval_seconds: u64,
    /// Close an agent socket silent for this long.
    pub idle_timeout_seconds: u64,
    /// Extra time past a command's own timeout before the server marks it `timed_out`.
    pub command_grace_seconds: u64,
    /// Largest WebSocket message accepted from an agent.
    pub max_frame_bytes: usize,
    /// Cap for each of stdout and stderr as stored.
    pub max_output_bytes: usize,
    /// Largest REST request body.
    pub max_body_bytes: usize,
    pub metrics_retention_days: u64,
    /// How often background upkeep (timeouts, retention) runs.
    pub sweep_interval_seconds: u64,

    /// Commands a user may submit per minute.
    pub commands_per_minute_per_user: u32,
    /// Commands that may be queued for one agent per minute.
    pub commands_per_minute_per_agent: u32,
    /// Failed logins per 15 minutes from one address, and for one account.
    pub login_attempts_per_address: u32,
    pub login_attempts_per_account: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:3001".parse().expect("valid default address"),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            jwt_secret: String::new(),
            cors_origins: Vec::new(),
            allow_registration: false,
            dashboard_dir: PathBuf::from("dashboard/dist"),
            downloads_dir: PathBuf::from("data/downloads"),
            log_dir: None,
            log_json: false,
            auth_timeout_seconds: 10,
            ping_interval_seconds: 30,
            idle_timeout_seconds: 90,
            command_grace_seconds: 30,
            max_frame_bytes: 4 * 1024 * 1024,
            max_output_bytes: 1024 * 1024,
            max_body_bytes: 2 * 1024 * 1024,
            metrics_retention_days: 30,
            sweep_interval_seconds: 5,
            commands_per_minute_per_user: 120,
            commands_per_minute_per_agent: 60,
            login_attempts_per_address: 20,
            login_attempts_per_account: 10,
        }
    }
}

impl std::fmt::Debug for Config {
    // Secrets never reach a log line: the JWT secret and a database password are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "jwt_secret",
                &if self.jwt_secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("cors_origins", &self.cors_origins)
            .field("allow_registration", &self.allow_registration)
            .field("dashboard_dir", &self.dashboard_dir)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {key}: {message}")]
    Env { key: String, message: String },
    #[error("setting {key} = {value}: allowed range is {range}")]
    Range {
        key: &'static str,
        value: String,
        range: &'static str,
    },
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `GURURMM_*` overrides read through `get` (a seam so tests need not touch the
    /// process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(key: &str, raw: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            raw.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                key: key.to_owned(),
                message: e.to_string(),
            })
        }
        if let Some(v) = get("GURURMM_LISTEN") {
            self.listen = parse("GURURMM_LISTEN", &v)?;
        }
        if let Some(v) = get("GURURMM_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("DATABASE_URL").or_else(|| get("GURURMM_DATABASE_URL")) {
            self.database_url = v;
        }
        if let Some(v) = get("GURURMM_JWT_SECRET") {
            self.jwt_secret = v;
        }
        if let Some(v) = get("GURURMM_CORS_ORIGINS") {
            self.cors_origins = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("GURURMM_ALLOW_REGISTRATION") {
            self.allow_registration = parse("GURURMM_ALLOW_REGISTRATION", &v)?;
        }
        if let Some(v) = get("GURURMM_DASHBOARD_DIR") {
            self.dashboard_dir = PathBuf::from(v);
        }
        if let Some(v) = get("GURURMM_DOWNLOADS_DIR") {
            self.downloads_dir = PathBuf::from(v);
        }
        if let Some(v) = get("GURURMM_LOG_DIR") {
            self.log_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("GURURMM_LOG_JSON") {
            self.log_json = parse("GURURMM_LOG_JSON", &v)?;
        }
        if let Some(v) = get("GURURMM_METRICS_RETENTION_DAYS") {
            self.metrics_retention_days = parse("GURURMM_METRICS_RETENTION_DAYS", &v)?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(
            key: &'static str,
            value: u64,
            range: std::ops::RangeInclusive<u64>,
            text: &'static str,
        ) -> Result<(), ConfigError> {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Range {
                    key,
                    value: value.to_string(),
                    range: text,
                })
            }
        }
        check(
            "auth_timeout_seconds",
            self.auth_timeout_seconds,
            1..=300,
            "1..=300",
        )?;
        check(
            "ping_interval_seconds",
            self.ping_interval_seconds,
            1..=3600,
            "1..=3600",
        )?;
        check(
            "idle_timeout_seconds",
            self.idle_timeout_seconds,
            2..=86400,
            "2..=86400",
        )?;
        check(
            "command_grace_seconds",
            self.command_grace_seconds,
            0..=3600,
            "0..=3600",
        )?;
        check(
            "max_frame_bytes",
            self.max_frame_bytes as u64,
            1024..=(256 << 20),
            "1024..=268435456",
        )?;
        check(
            "max_output_bytes",
            self.max_output_bytes as u64,
            1024..=(64 << 20),
            "1024..=67108864",
        )?;
        check(
            "max_body_bytes",
            self.max_body_bytes as u64,
            1024..=(256 << 20),
            "1024..=268435456",
        )?;
        check(
            "metrics_retention_days",
            self.metrics_retention_days,
            1..=3650,
            "1..=3650",
        )?;
        check(
            "sweep_interval_seconds",
            self.sweep_interval_seconds,
            1..=3600,
            "1..=3600",
        )?;
        check(
            "commands_per_minute_per_user",
            self.commands_per_minute_per_user.into(),
            1..=100_000,
            "1..=100000",
        )?;
        check(
            "commands_per_minute_per_agent",
            self.commands_per_minute_per_agent.into(),
            1..=100_000,
            "1..=100000",
        )?;
        check(
            "login_attempts_per_address",
            self.login_attempts_per_address.into(),
            1..=10_000,
            "1..=10000",
        )?;
        check(
            "login_attempts_per_account",
            self.login_attempts_per_account.into(),
            1..=10_000,
            "1..=10000",
        )?;
        if self.idle_timeout_seconds <= self.ping_interval_seconds {
            return Err(ConfigError::Range {
                key: "idle_timeout_seconds",
                value: self.idle_timeout_seconds.to_string(),
                range: "greater than ping_interval_seconds",
            });
        }
        Ok(())
    }

    /// The database URL in force: the configured one or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("gururmm.db").display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_seconds)
    }
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_seconds)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "GURURMM_LISTEN" => Some("127.0.0.1:9000".into()),
            "GURURMM_CORS_ORIGINS" => Some("https://a.example, https://b.example".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(
            c.cors_origins,
            vec!["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn bad_env_value_names_the_key() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "GURURMM_LISTEN").then(|| "nowhere".into()))
            .unwrap_err();
        assert!(err.to_string().contains("GURURMM_LISTEN"), "{err}");
    }

    #[test]
    fn out_of_range_names_key_and_range() {
        let c = Config {
            metrics_retention_days: 0,
            ..Config::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("metrics_retention_days") && err.contains("1..=3650"),
            "{err}"
        );
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let err = toml::from_str::<Config>("listen_port = 5").unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(
            redact_url("postgres://rmm:hunter2@db.internal:5432/rmm"),
            "postgres://rmm:***@db.internal:5432/rmm"
        );
        let c = Config {
            database_url: "postgres://rmm:hunter2@db/rmm".into(),
            jwt_secret: "s3cret".into(),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
