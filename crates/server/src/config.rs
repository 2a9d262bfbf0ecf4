//! Server settings: built-in defaults, then a TOML file (`--config`), then the environment.
//! The environment rule is derived from the struct: every field `name` is read from
//! `GURURMM_NAME` (and `database_url` also from `DATABASE_URL`), so a new setting is settable
//! from the environment without further code. docs/OPERATIONS.md lists them all; a test keeps
//! that table and this struct in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer};

use crate::auth::Role;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to serve on.
    pub listen: SocketAddr,
    /// Folder for the embedded database, the generated JWT secret, downloads and logs.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/gururmm.db`.
    pub database_url: String,
    /// Secret for signing JWTs. Empty: generated on first start and kept in the data folder.
    pub jwt_secret: String,
    /// Origins allowed by CORS. Empty (the default): same-origin only. From the environment:
    /// a comma-separated list.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cors_origins: Vec<String>,
    /// Whether `POST /api/auth/register` may create users (as technicians).
    pub allow_registration: bool,
    /// Every user must sign in with a second factor (TOTP); until they set one up, they can
    /// reach only their account's two-factor setup.
    pub require_two_factor: bool,
    /// Serve the dashboard from this folder instead of the copy built into the binary
    /// (for dashboard development).
    pub dashboard_dir: Option<PathBuf>,
    /// Folder of agent builds served at `/downloads/`; default `<data_dir>/downloads`.
    /// Read it through [`Config::downloads_dir`].
    pub downloads_dir: Option<PathBuf>,
    /// The release public key (base64 Ed25519, as `release keygen` writes `PREFIX.pub`) that
    /// agent builds are signed with; default `<data_dir>/release.pub`. Without it no `update`
    /// is sent. Read it through [`Config::release_public_key_file`].
    pub release_public_key_file: Option<PathBuf>,
    /// The address agents reach this server on, e.g. `https://rmm.example.com`: the base of
    /// the download URLs in `update` messages. Empty: the `Host` the agent connected to.
    pub public_url: String,
    /// Log to a rotated file as well as stderr, in `log_dir`.
    pub log_to_file: bool,
    /// Folder of the log files; default `<data_dir>/logs`. Setting it also turns file
    /// logging on. Read it through [`Config::log_dir`].
    pub log_dir: Option<PathBuf>,
    /// Log lines as JSON.
    pub log_json: bool,
    /// When the log file is rotated: `minutely`, `hourly`, `daily` or `never`.
    pub log_rotation: crate::logging::LogRotation,
    /// Log files kept (the current one included); older ones are deleted at start and at
    /// each rotation.
    pub log_max_files: usize,
    /// Serve Prometheus metrics at `/metrics` on this address (its own listener, never the
    /// public port). None (the default): no metrics endpoint. Empty from the environment: none.
    #[serde(deserialize_with = "empty_as_none")]
    pub metrics_listen: Option<SocketAddr>,

    pub auth_timeout_seconds: u64,
    pub ping_interval_seconds: u64,
    /// Close an agent socket silent for this long.
    pub idle_timeout_seconds: u64,
    /// Extra time past a command's own timeout before the server marks it `timed_out`.
    pub command_grace_seconds: u64,
    /// Largest WebSocket message accepted from an agent.
    pub max_frame_bytes: usize,
    /// Agent sockets not yet authenticated, from one source address and in total; past
    /// either the upgrade is refused (429 or 503).
    pub max_pending_sockets_per_address: usize,
    pub max_pending_sockets: usize,
    /// Cap for each of stdout and stderr as stored.
    pub max_output_bytes: usize,
    /// Largest REST request body.
    pub max_body_bytes: usize,
    pub metrics_retention_days: u64,
    /// How often background upkeep (timeouts, retention) runs.
    pub sweep_interval_seconds: u64,
    /// An agent update sent (`pending`) or under way (`downloading`, `installed`) with no
    /// report from the agent for this long is marked `failed`.
    pub update_report_timeout_seconds: u64,
    /// How long a request waits for a database connection before it fails with 503. Short,
    /// so an outage answers at once instead of hanging every caller.
    pub database_timeout_ms: u64,
    /// Metrics reports that may wait to be written (an outage fills it; past it, reports are
    /// dropped and counted).
    pub report_queue_capacity: usize,

    /// Commands a user may submit per minute.
    pub commands_per_minute_per_user: u32,
    /// Commands that may be queued for one agent per minute.
    pub commands_per_minute_per_agent: u32,
    /// Sign-in attempts per 15 minutes from one address (all accounts), counted before the
    /// password is checked; a success gives its attempt back.
    pub login_attempts_per_address: u32,
    /// Sign-in attempts per 15 minutes for one account from one address; a success resets it.
    /// Per address, so a stranger cannot lock a user out of their own address.
    pub login_attempts_per_account: u32,
    /// Failed sign-ins on one account (from anywhere, 15 minutes) after which attempts from
    /// addresses that account never signed in from are spaced out (a slowdown, not a lockout).
    pub login_slowdown_after_failures: u32,
    /// The spacing, per account, of those slowed attempts; one waiting longer than 5 s is
    /// answered 429.
    pub login_slowdown_interval_ms: u64,
    /// Enrollments (site code or token) per minute from one address; more get 429.
    pub enrollments_per_minute_per_address: u32,

    /// OpenID Connect issuer for single sign-on, e.g.
    /// `https://login.microsoftonline.com/<tenant>/v2.0`. Empty: single sign-on is off.
    pub oidc_issuer: String,
    pub oidc_client_id: String,
    /// Never logged.
    pub oidc_client_secret: String,
    /// The callback URL registered with the provider, as browsers reach this server (behind a
    /// proxy it is not the listen address): `https://rmm.example.com/api/auth/oidc/callback`.
    /// Required when `oidc_issuer` is set.
    pub oidc_redirect_url: String,
    /// Text of the sign-in button: "Sign in with <display name>".
    pub oidc_display_name: String,
    /// Role of a user created at their first single sign-on; `none` refuses users who have no
    /// local account.
    pub oidc_default_role: String,
    /// `group=role` pairs: a provider group (id or name, from the `groups` claim) and the role
    /// its members get; the highest matching role wins and is applied at every sign-in.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub oidc_group_roles: Vec<String>,

    /// SMTP server for email notification channels. Empty: no email channels.
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    /// Empty: no authentication.
    pub smtp_username: String,
    /// Never logged.
    pub smtp_password: String,
    /// The sender of notification emails, e.g. `GuruRMM <rmm@example.com>`.
    pub smtp_from: String,
    /// Attempts of one notification before it is given up on as failed.
    pub notification_max_attempts: u32,
    /// The wait before the first retry of a notification; doubled at each further retry.
    pub notification_retry_base_seconds: u64,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain text (a relay on the same host or network only).
    None,
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the start, usually port 465.
    Tls,
}

fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(d)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// An optional value where an empty string (say `GURURMM_METRICS_LISTEN=`) means none.
fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(d)? {
        Some(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
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
            require_two_factor: false,
            dashboard_dir: None,
            downloads_dir: None,
            release_public_key_file: None,
            public_url: String::new(),
            log_to_file: false,
            log_dir: None,
            log_json: false,
            log_rotation: crate::logging::LogRotation::Daily,
            log_max_files: 14,
            metrics_listen: None,
            auth_timeout_seconds: 10,
            ping_interval_seconds: 30,
            idle_timeout_seconds: 90,
            command_grace_seconds: 30,
            max_frame_bytes: 4 * 1024 * 1024,
            max_pending_sockets_per_address: 64,
            max_pending_sockets: 4096,
            max_output_bytes: 1024 * 1024,
            max_body_bytes: 2 * 1024 * 1024,
            metrics_retention_days: 30,
            sweep_interval_seconds: 5,
            update_report_timeout_seconds: 3600,
            database_timeout_ms: 1000,
            report_queue_capacity: 20_000,
            commands_per_minute_per_user: 120,
            commands_per_minute_per_agent: 60,
            login_attempts_per_address: 20,
            login_attempts_per_account: 10,
            login_slowdown_after_failures: 10,
            login_slowdown_interval_ms: 3000,
            enrollments_per_minute_per_address: 10,
            oidc_issuer: String::new(),
            oidc_client_id: String::new(),
            oidc_client_secret: String::new(),
            oidc_redirect_url: String::new(),
            oidc_display_name: "Microsoft".into(),
            oidc_default_role: "viewer".into(),
            oidc_group_roles: Vec::new(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password: String::new(),
            smtp_from: String::new(),
            notification_max_attempts: 8,
            notification_retry_base_seconds: 30,
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
            .field("require_two_factor", &self.require_two_factor)
            .field("dashboard_dir", &self.dashboard_dir)
            .field("downloads_dir", &self.downloads_dir())
            .field("release_public_key_file", &self.release_public_key_file())
            .field("public_url", &self.public_url)
            .field("log_dir", &self.log_dir())
            .field("log_rotation", &self.log_rotation)
            .field("log_max_files", &self.log_max_files)
            .field("metrics_listen", &self.metrics_listen)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_client_id", &self.oidc_client_id)
            .field(
                "oidc_client_secret",
                &if self.oidc_client_secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("oidc_redirect_url", &self.oidc_redirect_url)
            .field("oidc_default_role", &self.oidc_default_role)
            .field("oidc_group_roles", &self.oidc_group_roles)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_username", &self.smtp_username)
            .field(
                "smtp_password",
                &if self.smtp_password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("smtp_from", &self.smtp_from)
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
    #[error("setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("setting {key} = {value}: allowed range is {range}")]
    Range {
        key: &'static str,
        value: String,
        range: &'static str,
    },
}

/// The path of the single sign-on callback route; `oidc_redirect_url` ends with it.
pub const OIDC_CALLBACK_PATH: &str = "/api/auth/oidc/callback";

/// The environment variable that sets `field`.
pub fn env_var_name(field: &str) -> String {
    format!("GURURMM_{}", field.to_uppercase())
}

/// Older name for `database_url`, still honoured (and preferred, as before).
pub const DATABASE_URL_ALIAS: &str = "DATABASE_URL";

/// One environment variable as a figment source, so an error names the variable.
struct EnvVar {
    name: String,
    field: &'static str,
    value: String,
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        // Always a string: `extract_lossy` turns it into a number or bool where the field
        // wants one, and a numeric secret stays a string.
        dict.insert(self.field.to_owned(), Value::from(self.value.clone()));
        Ok(Profile::Default.collect(dict))
    }
}

impl Config {
    /// The setting names, in declaration order, as serde sees them (so also the TOML keys).
    pub fn field_names() -> &'static [&'static str] {
        struct Grab<'a>(&'a mut &'static [&'static str]);
        impl<'de> Deserializer<'de> for Grab<'_> {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(
                self,
                _: V,
            ) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("field names only"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                *self.0 = fields;
                Err(serde::de::Error::custom("field names only"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut fields: &'static [&'static str] = &[];
        let _ = Config::deserialize(Grab(&mut fields));
        fields
    }

    /// Defaults, then the file (if any), then the environment; then validated.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match file {
            Some(path) => Some((
                path,
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?,
            )),
            None => None,
        };
        let config = Config::from_sources(
            text.as_ref().map(|(path, text)| (*path, text.as_str())),
            |key| std::env::var(key).ok(),
        )?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults, then `file` (its path and text), then the variables read through `get` (a
    /// seam so tests need not touch the process environment). Not yet validated.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some((_, text)) = file {
            figment = figment.merge(Toml::string(text));
        }
        for &field in Config::field_names() {
            let mut names = vec![env_var_name(field)];
            if field == "database_url" {
                names.push(DATABASE_URL_ALIAS.to_owned());
            }
            for name in names {
                if let Some(value) = get(&name) {
                    figment = figment.merge(EnvVar { name, field, value });
                }
            }
        }
        figment.extract_lossy().map_err(|e| {
            let source = e.metadata.as_ref().map(|m| m.name.to_string());
            let key = e.path.join(".");
            let message = e.kind.to_string();
            match (source, file) {
                (Some(name), _) if name.starts_with("GURURMM_") || name == DATABASE_URL_ALIAS => {
                    ConfigError::Env { key: name, message }
                }
                (_, Some((path, _))) => ConfigError::Parse {
                    path: path.to_owned(),
                    message: if key.is_empty() {
                        message
                    } else {
                        format!("{key}: {message}")
                    },
                },
                (_, None) => ConfigError::Env { key, message },
            }
        })
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
            "log_max_files",
            self.log_max_files as u64,
            1..=1000,
            "1..=1000",
        )?;
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
            "max_pending_sockets_per_address",
            self.max_pending_sockets_per_address as u64,
            1..=1_000_000,
            "1..=1000000",
        )?;
        check(
            "max_pending_sockets",
            self.max_pending_sockets as u64,
            1..=1_000_000,
            "1..=1000000",
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
            "update_report_timeout_seconds",
            self.update_report_timeout_seconds,
            1..=604_800,
            "1..=604800",
        )?;
        check(
            "database_timeout_ms",
            self.database_timeout_ms,
            100..=60_000,
            "100..=60000",
        )?;
        check(
            "report_queue_capacity",
            self.report_queue_capacity as u64,
            100..=10_000_000,
            "100..=10000000",
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
        check(
            "login_slowdown_after_failures",
            self.login_slowdown_after_failures.into(),
            1..=100_000,
            "1..=100000",
        )?;
        check(
            "login_slowdown_interval_ms",
            self.login_slowdown_interval_ms,
            0..=60_000,
            "0..=60000",
        )?;
        check(
            "enrollments_per_minute_per_address",
            self.enrollments_per_minute_per_address.into(),
            1..=100_000,
            "1..=100000",
        )?;
        self.validate_oidc()?;
        if let Some(metrics) = self.metrics_listen {
            let same_ip = metrics.ip() == self.listen.ip()
                || metrics.ip().is_unspecified()
                || self.listen.ip().is_unspecified();
            if metrics.port() != 0 && metrics.port() == self.listen.port() && same_ip {
                return Err(ConfigError::Invalid {
                    key: "metrics_listen",
                    message: format!(
                        "{metrics} overlaps listen ({}): metrics are served on their own address,                          never on the public port",
                        self.listen
                    ),
                });
            }
        }
        check(
            "notification_max_attempts",
            self.notification_max_attempts.into(),
            1..=100,
            "1..=100",
        )?;
        check(
            "notification_retry_base_seconds",
            self.notification_retry_base_seconds,
            1..=86400,
            "1..=86400",
        )?;
        if !self.smtp_host.is_empty() && self.smtp_from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(ConfigError::Invalid {
                key: "smtp_from",
                message: "an email address is required with smtp_host".into(),
            });
        }
        if self.idle_timeout_seconds <= self.ping_interval_seconds {
            return Err(ConfigError::Range {
                key: "idle_timeout_seconds",
                value: self.idle_timeout_seconds.to_string(),
                range: "greater than ping_interval_seconds",
            });
        }
        Ok(())
    }

    fn validate_oidc(&self) -> Result<(), ConfigError> {
        let url = self.public_url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: "must be an http(s) URL such as https://rmm.example.com".into(),
            });
        }
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        if self.oidc_issuer.is_empty() {
            return Ok(());
        }
        if !self.oidc_issuer.starts_with("https://") && !self.oidc_issuer.starts_with("http://") {
            return Err(invalid("oidc_issuer", "must be an http(s) URL"));
        }
        if self.oidc_client_id.is_empty() {
            return Err(invalid(
                "oidc_client_id",
                "required when oidc_issuer is set (the application's client id at the provider)",
            ));
        }
        if !(self.oidc_redirect_url.starts_with("https://")
            || self.oidc_redirect_url.starts_with("http://"))
        {
            return Err(invalid(
                "oidc_redirect_url",
                "required when oidc_issuer is set: the callback URL registered with the provider, \
                 as browsers reach this server, e.g. https://rmm.example.com/api/auth/oidc/callback",
            ));
        }
        if !self.oidc_redirect_url.ends_with(OIDC_CALLBACK_PATH) {
            return Err(invalid(
                "oidc_redirect_url",
                &format!("must end with {OIDC_CALLBACK_PATH}, the server's callback route"),
            ));
        }
        self.oidc_new_user_role()
            .map_err(|m| invalid("oidc_default_role", &m))?;
        self.oidc_group_role_map()
            .map_err(|m| invalid("oidc_group_roles", &m))?;
        Ok(())
    }

    /// Whether single sign-on is configured.
    pub fn oidc_enabled(&self) -> bool {
        !self.oidc_issuer.is_empty()
    }

    /// `oidc_default_role`: the role for new users, `None` to refuse them.
    pub fn oidc_new_user_role(&self) -> Result<Option<Role>, String> {
        match self.oidc_default_role.trim() {
            "none" => Ok(None),
            other => other.parse().map(Some).map_err(|e| format!("{e}, or none")),
        }
    }

    /// `oidc_group_roles` parsed: (group, role) pairs.
    pub fn oidc_group_role_map(&self) -> Result<Vec<(String, Role)>, String> {
        self.oidc_group_roles
            .iter()
            .map(|pair| {
                let (group, role) = pair
                    .rsplit_once('=')
                    .ok_or_else(|| format!("\"{pair}\" is not group=role"))?;
                let group = group.trim();
                if group.is_empty() {
                    return Err(format!("\"{pair}\" has no group"));
                }
                Ok((group.to_owned(), role.trim().parse::<Role>()?))
            })
            .collect()
    }

    /// The database URL in force: the configured one or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("gururmm.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// Where agent builds are served from: `downloads_dir`, or `<data_dir>/downloads`.
    pub fn downloads_dir(&self) -> PathBuf {
        match &self.downloads_dir {
            Some(dir) if !dir.as_os_str().is_empty() => dir.clone(),
            _ => self.data_dir.join("downloads"),
        }
    }

    /// The release public key file: `release_public_key_file`, or `<data_dir>/release.pub`.
    pub fn release_public_key_file(&self) -> PathBuf {
        match &self.release_public_key_file {
            Some(file) if !file.as_os_str().is_empty() => file.clone(),
            _ => self.data_dir.join("release.pub"),
        }
    }

    /// The log folder when logging to a file is on (`log_to_file`, or `log_dir` given):
    /// `log_dir`, or `<data_dir>/logs`.
    pub fn log_dir(&self) -> Option<PathBuf> {
        match &self.log_dir {
            Some(dir) if !dir.as_os_str().is_empty() => Some(dir.clone()),
            _ if self.log_to_file => Some(self.data_dir.join("logs")),
            _ => None,
        }
    }

    pub fn database_timeout(&self) -> Duration {
        Duration::from_millis(self.database_timeout_ms)
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

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn env_overrides_file_values() {
        let file = "listen = \"127.0.0.1:8000\"\nmetrics_retention_days = 7\ncors_origins = [\"https://file.example\"]\n";
        let c = Config::from_sources(
            Some((Path::new("server.toml"), file)),
            env(&[
                ("GURURMM_LISTEN", "127.0.0.1:9000"),
                (
                    "GURURMM_CORS_ORIGINS",
                    "https://a.example, https://b.example",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(
            c.cors_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(c.metrics_retention_days, 7, "file value kept");
    }

    #[test]
    fn bad_env_value_names_the_key() {
        let err = Config::from_sources(None, env(&[("GURURMM_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("GURURMM_LISTEN"), "{err}");
        let err =
            Config::from_sources(None, env(&[("GURURMM_MAX_BODY_BYTES", "lots")])).unwrap_err();
        assert!(err.to_string().contains("GURURMM_MAX_BODY_BYTES"), "{err}");
    }

    #[test]
    fn every_kind_of_setting_comes_from_the_environment() {
        let c = Config::from_sources(
            None,
            env(&[
                ("GURURMM_SWEEP_INTERVAL_SECONDS", "7"),
                ("GURURMM_LOGIN_ATTEMPTS_PER_ACCOUNT", "3"),
                ("GURURMM_ALLOW_REGISTRATION", "true"),
                ("GURURMM_DOWNLOADS_DIR", "/srv/agents"),
                ("GURURMM_DASHBOARD_DIR", "/src/dashboard/dist"),
                // Digits only: still a string, not a number.
                ("GURURMM_JWT_SECRET", "123456789012345678901234567890123"),
                ("GURURMM_DATABASE_URL", "postgres://gururmm@db/a"),
                ("DATABASE_URL", "postgres://gururmm@db/b"),
            ]),
        )
        .unwrap();
        assert_eq!(c.sweep_interval_seconds, 7);
        assert_eq!(c.login_attempts_per_account, 3);
        assert!(c.allow_registration);
        assert_eq!(c.downloads_dir(), PathBuf::from("/srv/agents"));
        assert_eq!(c.dashboard_dir, Some(PathBuf::from("/src/dashboard/dist")));
        assert_eq!(c.jwt_secret, "123456789012345678901234567890123");
        assert_eq!(
            c.database_url, "postgres://gururmm@db/b",
            "DATABASE_URL wins"
        );
    }

    #[test]
    fn unrelated_gururmm_variables_are_not_settings() {
        // GURURMM_LOG, GURURMM_CONFIG and the tests' variables share the prefix.
        let c = Config::from_sources(
            None,
            env(&[("GURURMM_LOG", "debug"), ("GURURMM_CONFIG", "x.toml")]),
        )
        .unwrap();
        assert_eq!(c.listen, Config::default().listen);
    }

    #[test]
    fn paths_default_under_the_data_folder() {
        let c =
            Config::from_sources(None, env(&[("GURURMM_DATA_DIR", "/var/lib/gururmm")])).unwrap();
        assert_eq!(
            c.downloads_dir(),
            PathBuf::from("/var/lib/gururmm/downloads")
        );
        assert_eq!(
            c.effective_database_url(),
            "sqlite:///var/lib/gururmm/gururmm.db"
        );
        assert_eq!(c.log_dir(), None, "file logging is off by default");
        let c = Config::from_sources(
            None,
            env(&[
                ("GURURMM_DATA_DIR", "/var/lib/gururmm"),
                ("GURURMM_LOG_TO_FILE", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.log_dir(), Some(PathBuf::from("/var/lib/gururmm/logs")));
        let c =
            Config::from_sources(None, env(&[("GURURMM_LOG_DIR", "/var/log/gururmm")])).unwrap();
        assert_eq!(c.log_dir(), Some(PathBuf::from("/var/log/gururmm")));
    }

    #[test]
    fn file_errors_name_the_file_and_key() {
        let path = Path::new("server.toml");
        let err = Config::from_sources(Some((path, "listen_port = 5")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listen_port") && err.contains("server.toml"),
            "{err}"
        );
        let err = Config::from_sources(Some((path, "max_body_bytes = \"big\"")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_body_bytes"), "{err}");
    }

    /// docs/OPERATIONS.md has one table of every setting; it must match the struct.
    #[test]
    fn settings_table_matches_the_struct() {
        let doc = include_str!("../../../docs/OPERATIONS.md");
        let header = "| key (TOML) | environment |";
        let start = doc
            .find(header)
            .expect("settings table in docs/OPERATIONS.md");
        let rows: Vec<&str> = doc[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let mut keys = Vec::new();
        for row in &rows {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`');
            let expected_env = format!("`{}`", env_var_name(key));
            assert!(
                cells[2].contains(&expected_env),
                "row {key}: environment column must name {expected_env}: {row}"
            );
            assert!(!cells[3].is_empty(), "row {key}: no default");
            keys.push(key.to_owned());
        }
        let fields: Vec<String> = Config::field_names()
            .iter()
            .map(|f| f.to_string())
            .collect();
        for field in &fields {
            let n = keys.iter().filter(|k| *k == field).count();
            assert_eq!(n, 1, "setting {field} appears {n} times in the table");
        }
        for key in &keys {
            assert!(fields.contains(key), "table row {key} is not a setting");
        }
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
        let c = Config {
            update_report_timeout_seconds: 0,
            ..Config::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("update_report_timeout_seconds") && err.contains("1..=604800"),
            "{err}"
        );
    }

    #[test]
    fn log_rotation_and_files_kept() {
        use crate::logging::LogRotation;
        let c = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(
            (c.log_rotation, c.log_max_files),
            (LogRotation::Daily, 14),
            "defaults"
        );
        let c = Config::from_sources(
            None,
            env(&[
                ("GURURMM_LOG_ROTATION", "hourly"),
                ("GURURMM_LOG_MAX_FILES", "48"),
            ]),
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!((c.log_rotation, c.log_max_files), (LogRotation::Hourly, 48));
        let file = Path::new("server.toml");
        let c = Config::from_sources(Some((file, "log_rotation = \"never\"")), env(&[])).unwrap();
        assert_eq!(c.log_rotation, LogRotation::Never);

        let err = Config::from_sources(None, env(&[("GURURMM_LOG_ROTATION", "weekly")]))
            .unwrap_err()
            .to_string();
        for named in [
            "GURURMM_LOG_ROTATION",
            "minutely",
            "hourly",
            "daily",
            "never",
        ] {
            assert!(err.contains(named), "{named} not in: {err}");
        }
        let err = Config::from_sources(Some((file, "log_rotation = \"weekly\"")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("log_rotation") && err.contains("daily"),
            "{err}"
        );
        for bad in ["0", "1001"] {
            let err = Config::from_sources(None, env(&[("GURURMM_LOG_MAX_FILES", bad)]))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("log_max_files") && err.contains("1..=1000"),
                "{err}"
            );
        }
    }

    #[test]
    fn single_sign_on_settings_are_checked_and_the_secret_never_printed() {
        let sso = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                (
                    "GURURMM_OIDC_ISSUER",
                    "https://login.microsoftonline.com/t/v2.0",
                ),
                ("GURURMM_OIDC_CLIENT_ID", "app"),
                ("GURURMM_OIDC_CLIENT_SECRET", "very-secret-value"),
            ];
            all.extend_from_slice(pairs);
            Config::from_sources(None, env(&all)).unwrap()
        };
        let err = sso(&[]).validate().unwrap_err().to_string();
        assert!(err.contains("oidc_redirect_url"), "{err}");
        let err = sso(&[(
            "GURURMM_OIDC_REDIRECT_URL",
            "https://rmm.example.com/elsewhere",
        )])
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("oidc_redirect_url"), "{err}");
        let url = (
            "GURURMM_OIDC_REDIRECT_URL",
            "https://rmm.example.com/api/auth/oidc/callback",
        );
        let c = sso(&[url, ("GURURMM_OIDC_GROUP_ROLES", "g1=admin, g2=technician")]);
        c.validate().unwrap();
        assert_eq!(
            c.oidc_group_role_map().unwrap(),
            vec![
                ("g1".to_owned(), Role::Admin),
                ("g2".to_owned(), Role::Technician)
            ]
        );
        assert_eq!(c.oidc_new_user_role().unwrap(), Some(Role::Viewer));
        assert!(!format!("{c:?}").contains("very-secret-value"));
        let err = sso(&[url, ("GURURMM_OIDC_GROUP_ROLES", "g1=owner")])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("oidc_group_roles"), "{err}");
        let err = sso(&[url, ("GURURMM_OIDC_DEFAULT_ROLE", "guest")])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("oidc_default_role"), "{err}");
        let c = sso(&[url, ("GURURMM_OIDC_DEFAULT_ROLE", "none")]);
        assert_eq!(c.oidc_new_user_role().unwrap(), None);
        // Off unless an issuer is set: nothing else is required then.
        Config::default().validate().unwrap();
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_never_the_public_port() {
        assert_eq!(Config::default().metrics_listen, None);
        let c = Config::from_sources(None, env(&[("GURURMM_METRICS_LISTEN", "127.0.0.1:9464")]))
            .unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        c.validate().unwrap();
        let c = Config::from_sources(None, env(&[("GURURMM_METRICS_LISTEN", "")])).unwrap();
        assert_eq!(c.metrics_listen, None, "empty means off");
        let file = "metrics_listen = \"10.0.0.5:9464\"\n";
        let c = Config::from_sources(Some((Path::new("server.toml"), file)), env(&[])).unwrap();
        assert_eq!(c.metrics_listen, Some("10.0.0.5:9464".parse().unwrap()));
        let err = Config::from_sources(None, env(&[("GURURMM_METRICS_LISTEN", "9464")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("GURURMM_METRICS_LISTEN"), "{err}");
        // The public port (0.0.0.0:3001 by default) cannot serve them too.
        let c = Config::from_sources(None, env(&[("GURURMM_METRICS_LISTEN", "127.0.0.1:3001")]))
            .unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("metrics_listen"), "{err}");
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
