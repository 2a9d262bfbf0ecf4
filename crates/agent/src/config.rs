//! `agent.toml`: SPEC's file plus an `[agent]` section holding every interval and path.
//!
//! Every value has SPEC's default, so a file with only `[server]` is complete. A value out of
//! range is refused with an error naming the key and the allowed range.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::metrics::CollectorKind;

/// How the agent talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One persistent WebSocket (the normal mode).
    Websocket,
    /// HTTP polling of `/api/agent/...` for machines that cannot keep a WebSocket.
    Legacy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    #[serde(default)]
    pub agent: AgentSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub watchdog: WatchdogSection,
    #[serde(default)]
    pub update: UpdateSection,
    #[serde(default)]
    pub claude: ClaudeSection,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `wss://host/ws` or `ws://host:port/ws`. Legacy mode uses the same host over http(s).
    pub url: String,
    /// A site code (enrollment only) or a `grmm_...` agent key.
    pub api_key: String,
    /// A PEM file with extra CA certificates, trusted in addition to the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allows plain `ws://` or `http://` to a host that is not loopback. Off by default:
    /// anyone on the network path could read the key and send the agent commands.
    #[serde(default)]
    pub allow_insecure: bool,
}

impl ServerSection {
    /// The host of a plain-text URL (`ws://`, `http://`) that is not loopback; None for
    /// `wss://`, `https://` and loopback hosts (127.0.0.0/8, ::1, localhost).
    pub fn insecure_remote_host(&self) -> Option<String> {
        let url = self.url.trim();
        let rest = ["ws://", "http://"]
            .iter()
            .find_map(|scheme| strip_prefix_ignore_case(url, scheme))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host_port.split(':').next().unwrap_or_default(),
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!loopback).then(|| host.to_owned())
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl std::fmt::Debug for ServerSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSection")
            .field("url", &self.url)
            .field("api_key", &redact(&self.api_key))
            .field("ca_file", &self.ca_file)
            .field("allow_insecure", &self.allow_insecure)
            .finish()
    }
}

/// Keeps a key out of logs: a site code is shown, a `grmm_` key only by its prefix.
pub fn redact(key: &str) -> String {
    if key.starts_with("grmm_") {
        "grmm_***".to_owned()
    } else {
        key.to_owned()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    pub mode: Mode,
    pub heartbeat_interval_seconds: u64,
    pub network_check_interval_seconds: u64,
    pub idle_timeout_seconds: u64,
    pub auth_timeout_seconds: u64,
    /// First reconnect delay; doubles after each failure up to `reconnect_max_delay_seconds`,
    /// each delay spread at random over 10-100 % of it (a fleet reconnects over the whole delay).
    pub reconnect_delay_seconds: u64,
    pub reconnect_max_delay_seconds: u64,
    /// Used when a command arrives with `timeout_seconds` 0.
    pub command_timeout_seconds: u64,
    /// The longest timeout a command may ask for.
    pub command_max_timeout_seconds: u64,
    /// stdout and stderr are each cut at this many bytes, with a marker where cut.
    pub output_cap_bytes: usize,
    /// The interpreter of `script` commands when the command does not name one.
    pub script_interpreter: String,
    pub state_dir: PathBuf,
    pub log_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace` (a tracing filter).
    pub log_level: String,
    /// Rotated log files kept (one per day).
    pub log_files_kept: usize,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            mode: Mode::Websocket,
            heartbeat_interval_seconds: 30,
            network_check_interval_seconds: 30,
            idle_timeout_seconds: 90,
            auth_timeout_seconds: 10,
            reconnect_delay_seconds: 10,
            reconnect_max_delay_seconds: 300,
            command_timeout_seconds: 300,
            command_max_timeout_seconds: 86_400,
            output_cap_bytes: 1024 * 1024,
            script_interpreter: default_script_interpreter().to_owned(),
            state_dir: default_state_dir(),
            log_dir: default_log_dir(),
            log_level: "info".to_owned(),
            log_files_kept: 7,
        }
    }
}

/// `[claude]`: the AI task executor (`claude_task` commands run by the Claude Code CLI).
/// Off by default; when on, every task runs inside `working_root`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaudeSection {
    pub enabled: bool,
    /// The CLI to run (a name found in PATH, or a path).
    pub cli_path: String,
    /// The folder every task's working directory and context files must lie in. Required
    /// when enabled; it must exist.
    pub working_root: Option<PathBuf>,
    /// Appended to the CLI's arguments (after `-p <task>`).
    pub extra_args: Vec<String>,
    /// Used when a task arrives with `timeout_seconds` 0; a task may ask for at most 600 s.
    pub default_timeout_seconds: u64,
}

impl Default for ClaudeSection {
    fn default() -> Self {
        ClaudeSection {
            enabled: false,
            cli_path: "claude".to_owned(),
            working_root: None,
            extra_args: Vec::new(),
            default_timeout_seconds: gururmm_protocol::claude_task::DEFAULT_TIMEOUT_SECONDS,
        }
    }
}

/// `[metrics]`: the file keeps one `collect_NAME = true|false` per collector; the agent
/// holds the list of enabled [`CollectorKind`]s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "MetricsToml")]
pub struct MetricsSection {
    pub interval_seconds: u64,
    /// The enabled collectors, each once, in [`CollectorKind::ALL`] order.
    pub collectors: Vec<CollectorKind>,
}

impl MetricsSection {
    /// A section with only `kind` enabled.
    pub fn only(kind: CollectorKind) -> MetricsSection {
        MetricsSection {
            collectors: vec![kind],
            ..MetricsSection::default()
        }
    }

    pub fn collects(&self, kind: CollectorKind) -> bool {
        self.collectors.contains(&kind)
    }

    /// The section with `kind` turned off.
    pub fn without(&self, kind: CollectorKind) -> MetricsSection {
        MetricsSection {
            interval_seconds: self.interval_seconds,
            collectors: self
                .collectors
                .iter()
                .copied()
                .filter(|k| *k != kind)
                .collect(),
        }
    }
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsToml::default().into()
    }
}

/// `[metrics]` as written in agent.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MetricsToml {
    interval_seconds: u64,
    collect_cpu: bool,
    collect_memory: bool,
    collect_disk: bool,
    collect_network: bool,
}

impl Default for MetricsToml {
    fn default() -> Self {
        MetricsToml {
            interval_seconds: 60,
            collect_cpu: true,
            collect_memory: true,
            collect_disk: true,
            collect_network: true,
        }
    }
}

impl From<MetricsToml> for MetricsSection {
    fn from(t: MetricsToml) -> MetricsSection {
        let on = |kind| match kind {
            CollectorKind::Cpu => t.collect_cpu,
            CollectorKind::Memory => t.collect_memory,
            CollectorKind::Disk => t.collect_disk,
            CollectorKind::Network => t.collect_network,
        };
        MetricsSection {
            interval_seconds: t.interval_seconds,
            collectors: CollectorKind::ALL.into_iter().filter(|k| on(*k)).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogSection {
    pub enabled: bool,
    pub check_interval_seconds: u64,
    pub services: Vec<WatchedService>,
}

impl Default for WatchdogSection {
    fn default() -> Self {
        WatchdogSection {
            enabled: false,
            check_interval_seconds: 30,
            services: Vec::new(),
        }
    }
}

/// `[update]`: self-update from the server's `update` messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateSection {
    /// The release public key (base64 Ed25519) builds must be signed with. Without it the
    /// agent keeps the first `release_public_key` the server gives it and never replaces it.
    pub public_key: Option<String>,
    /// Off: every `update` is refused (reported failed).
    pub enabled: bool,
    /// A download larger than this is refused.
    pub max_download_bytes: u64,
    /// The whole download must finish within this.
    pub download_timeout_seconds: u64,
    /// How long a new build has to connect to the server before the previous one is put back.
    pub confirm_timeout_seconds: u64,
}

impl Default for UpdateSection {
    fn default() -> Self {
        UpdateSection {
            public_key: None,
            enabled: true,
            max_download_bytes: 256 * 1024 * 1024,
            download_timeout_seconds: 600,
            confirm_timeout_seconds: 120,
        }
    }
}

/// What the watchdog does when a service is found stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchdogAction {
    /// Restart it (at most `max_restarts` times in `restart_window_seconds`).
    Restart,
    /// Only report it.
    Alert,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedService {
    pub name: String,
    #[serde(default = "default_action")]
    pub action: WatchdogAction,
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    #[serde(default = "default_cooldown")]
    pub restart_cooldown_seconds: u64,
    #[serde(default = "default_window")]
    pub restart_window_seconds: u64,
    /// For a service the system's service manager does not know: a command whose exit status 0
    /// means "running" (run with `/bin/sh -c`, Windows `cmd.exe /C`). Needs `restart_command`.
    #[serde(default)]
    pub check_command: Option<String>,
    /// The command that starts the service again (with `check_command`).
    #[serde(default)]
    pub restart_command: Option<String>,
}

impl WatchedService {
    /// A service by name, with the defaults of `[[watchdog.services]]`.
    pub fn named(name: &str) -> WatchedService {
        WatchedService {
            name: name.to_owned(),
            action: default_action(),
            max_restarts: default_max_restarts(),
            restart_cooldown_seconds: default_cooldown(),
            restart_window_seconds: default_window(),
            check_command: None,
            restart_command: None,
        }
    }
}

fn default_action() -> WatchdogAction {
    WatchdogAction::Restart
}
fn default_max_restarts() -> u32 {
    3
}
fn default_cooldown() -> u64 {
    60
}
fn default_window() -> u64 {
    3600
}

pub fn default_config_path() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\ProgramData\GuruRMM\agent.toml")
    } else {
        PathBuf::from("/etc/gururmm/agent.toml")
    }
}

/// Where `install` puts the binary the Windows service runs.
#[cfg(windows)]
pub fn default_install_dir() -> PathBuf {
    PathBuf::from(r"C:\Program Files\GuruRMM")
}

pub fn default_state_dir() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\ProgramData\GuruRMM")
    } else {
        PathBuf::from("/var/lib/gururmm")
    }
}

pub fn default_log_dir() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\ProgramData\GuruRMM\logs")
    } else {
        PathBuf::from("/var/log/gururmm")
    }
}

pub fn default_script_interpreter() -> &'static str {
    if cfg!(windows) {
        "powershell"
    } else {
        "/bin/sh"
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key {key} = {value} is out of range: allowed {min}..={max}")]
    OutOfRange {
        key: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("config key {key} is invalid: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.agent;
        let u = &self.update;
        let ranges: [(&'static str, u64, u64, u64); 16] = [
            (
                "metrics.interval_seconds",
                self.metrics.interval_seconds,
                10,
                3600,
            ),
            (
                "agent.heartbeat_interval_seconds",
                a.heartbeat_interval_seconds,
                1,
                3600,
            ),
            (
                "agent.network_check_interval_seconds",
                a.network_check_interval_seconds,
                1,
                86_400,
            ),
            (
                "agent.idle_timeout_seconds",
                a.idle_timeout_seconds,
                2,
                86_400,
            ),
            ("agent.auth_timeout_seconds", a.auth_timeout_seconds, 1, 600),
            (
                "agent.reconnect_delay_seconds",
                a.reconnect_delay_seconds,
                1,
                3600,
            ),
            (
                "agent.reconnect_max_delay_seconds",
                a.reconnect_max_delay_seconds,
                1,
                86_400,
            ),
            (
                "agent.command_timeout_seconds",
                a.command_timeout_seconds,
                1,
                86_400,
            ),
            (
                "agent.command_max_timeout_seconds",
                a.command_max_timeout_seconds,
                1,
                604_800,
            ),
            (
                "agent.output_cap_bytes",
                a.output_cap_bytes as u64,
                1024,
                64 * 1024 * 1024,
            ),
            ("agent.log_files_kept", a.log_files_kept as u64, 1, 365),
            (
                "watchdog.check_interval_seconds",
                self.watchdog.check_interval_seconds,
                1,
                86_400,
            ),
            (
                "update.max_download_bytes",
                u.max_download_bytes,
                1024 * 1024,
                4 * 1024 * 1024 * 1024,
            ),
            (
                "update.download_timeout_seconds",
                u.download_timeout_seconds,
                10,
                86_400,
            ),
            (
                "update.confirm_timeout_seconds",
                u.confirm_timeout_seconds,
                5,
                3600,
            ),
            (
                "claude.default_timeout_seconds",
                self.claude.default_timeout_seconds,
                1,
                crate::commands::claude::MAX_TIMEOUT_SECONDS,
            ),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                return Err(ConfigError::OutOfRange {
                    key,
                    value,
                    min,
                    max,
                });
            }
        }
        if a.reconnect_max_delay_seconds < a.reconnect_delay_seconds {
            return Err(invalid(
                "agent.reconnect_max_delay_seconds",
                "must not be smaller than agent.reconnect_delay_seconds",
            ));
        }
        if a.idle_timeout_seconds <= a.heartbeat_interval_seconds {
            return Err(invalid(
                "agent.idle_timeout_seconds",
                "must be larger than agent.heartbeat_interval_seconds",
            ));
        }
        let url = self.server.url.as_str();
        let scheme_ok = match a.mode {
            Mode::Websocket => url.starts_with("ws://") || url.starts_with("wss://"),
            Mode::Legacy => ["ws://", "wss://", "http://", "https://"]
                .iter()
                .any(|s| url.starts_with(s)),
        };
        if !scheme_ok || url.split("://").nth(1).is_none_or(str::is_empty) {
            return Err(invalid(
                "server.url",
                "must be a ws:// or wss:// URL (legacy mode also takes http:// or https://)",
            ));
        }
        if let Some(host) = self.server.insecure_remote_host() {
            if !self.server.allow_insecure {
                return Err(ConfigError::Invalid {
                    key: "server.url".into(),
                    message: format!(
                        "plain ws:// or http:// to {host}, which is not this machine: anyone on \
                         the network path could read the agent key and send this machine \
                         commands. Use wss:// (https://), or set allow_insecure = true under \
                         [server] to accept that risk"
                    ),
                });
            }
        }
        if self.server.api_key.trim().is_empty() {
            return Err(invalid(
                "server.api_key",
                "must be a site code (WORD-WORD-NUMBER) or a grmm_ agent key",
            ));
        }
        if a.script_interpreter.trim().is_empty() {
            return Err(invalid("agent.script_interpreter", "must not be empty"));
        }
        if tracing_subscriber::EnvFilter::try_new(&a.log_level).is_err() {
            return Err(invalid(
                "agent.log_level",
                "must be error, warn, info, debug or trace",
            ));
        }
        if let Some(key) = &u.public_key {
            if let Err(e) = gururmm_protocol::release::parse_public_key(key) {
                return Err(ConfigError::Invalid {
                    key: "update.public_key".into(),
                    message: e,
                });
            }
        }
        if self.claude.enabled {
            if self.claude.cli_path.trim().is_empty() {
                return Err(invalid("claude.cli_path", "must not be empty"));
            }
            match &self.claude.working_root {
                None => return Err(invalid(
                    "claude.working_root",
                    "is required when [claude] enabled = true: the folder AI tasks are confined to",
                )),
                Some(root) if !root.is_dir() => {
                    return Err(ConfigError::Invalid {
                        key: "claude.working_root".into(),
                        message: format!("{} is not an existing directory", root.display()),
                    })
                }
                Some(_) => {}
            }
        }
        for (i, s) in self.watchdog.services.iter().enumerate() {
            let key = |field: &str| format!("watchdog.services[{i}].{field}");
            if s.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty"));
            }
            if s.max_restarts > 1000 {
                return Err(invalid(
                    key("max_restarts"),
                    "out of range: allowed 0..=1000",
                ));
            }
            if s.restart_cooldown_seconds > 86_400 {
                return Err(invalid(
                    key("restart_cooldown_seconds"),
                    "out of range: allowed 0..=86400",
                ));
            }
            if !(1..=604_800).contains(&s.restart_window_seconds) {
                return Err(invalid(
                    key("restart_window_seconds"),
                    "out of range: allowed 1..=604800",
                ));
            }
            if s.check_command.is_some() != s.restart_command.is_some() {
                return Err(invalid(
                    key("check_command"),
                    "check_command and restart_command must be given together",
                ));
            }
        }
        Ok(())
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.agent.heartbeat_interval_seconds)
    }
    pub fn network_check_interval(&self) -> Duration {
        Duration::from_secs(self.agent.network_check_interval_seconds)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.agent.idle_timeout_seconds)
    }
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.agent.auth_timeout_seconds)
    }
    pub fn metrics_interval(&self) -> Duration {
        Duration::from_secs(self.metrics.interval_seconds)
    }
    pub fn download_timeout(&self) -> Duration {
        Duration::from_secs(self.update.download_timeout_seconds)
    }
    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_secs(self.update.confirm_timeout_seconds)
    }
}

fn invalid(key: impl Into<String>, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[server]\nurl = \"wss://rmm.example.com/ws\"\napi_key = \"AMBER-RIVER-4821\"\n";

    #[test]
    fn minimal_file_gets_spec_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.agent.heartbeat_interval_seconds, 30);
        assert_eq!(c.agent.network_check_interval_seconds, 30);
        assert_eq!(c.agent.idle_timeout_seconds, 90);
        assert_eq!(c.agent.auth_timeout_seconds, 10);
        assert_eq!(c.agent.reconnect_delay_seconds, 10);
        assert_eq!(c.agent.command_timeout_seconds, 300);
        assert_eq!(c.metrics.interval_seconds, 60);
        assert_eq!(c.agent.mode, Mode::Websocket);
        assert_eq!(c.metrics.collectors, CollectorKind::ALL);
        assert!(c.update.enabled);
        assert_eq!(c.update.public_key, None);
        assert_eq!(c.update.max_download_bytes, 256 * 1024 * 1024);
        assert_eq!(c.update.download_timeout_seconds, 600);
        assert_eq!(c.update.confirm_timeout_seconds, 120);
    }

    #[test]
    fn update_section_is_checked() {
        let with = |extra: &str| Config::parse(&format!("{MINIMAL}\n[update]\n{extra}\n"));
        let (_, public) = gururmm_protocol::release::generate_key_pair().unwrap();
        let c = with(&format!("public_key = \"{public}\"\nenabled = false")).unwrap();
        assert_eq!(c.update.public_key.as_deref(), Some(public.as_str()));
        assert!(!c.update.enabled);
        let err = with("public_key = \"AAAA\"").unwrap_err().to_string();
        assert!(err.contains("update.public_key"), "{err}");
        let err = with("max_download_bytes = 10").unwrap_err().to_string();
        assert!(err.contains("update.max_download_bytes"), "{err}");
        let err = with("confirm_timeout_seconds = 0").unwrap_err().to_string();
        assert!(err.contains("update.confirm_timeout_seconds"), "{err}");
        let err = with("download_timeout_seconds = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("update.download_timeout_seconds"), "{err}");
    }

    #[test]
    fn shipped_example_lists_the_defaults() {
        let c = Config::parse(include_str!("../dist/agent.toml")).unwrap();
        let d = AgentSection::default();
        if cfg!(unix) {
            assert_eq!(c.agent.state_dir, d.state_dir);
            assert_eq!(c.agent.script_interpreter, d.script_interpreter);
        }
        assert_eq!(
            c.agent.heartbeat_interval_seconds,
            d.heartbeat_interval_seconds
        );
        assert_eq!(
            c.agent.reconnect_max_delay_seconds,
            d.reconnect_max_delay_seconds
        );
        assert_eq!(c.agent.output_cap_bytes, d.output_cap_bytes);
        assert_eq!(
            c.agent.command_max_timeout_seconds,
            d.command_max_timeout_seconds
        );
        assert!(!c.watchdog.enabled);
        let u = UpdateSection::default();
        assert_eq!(c.update.max_download_bytes, u.max_download_bytes);
        assert_eq!(c.update.confirm_timeout_seconds, u.confirm_timeout_seconds);
        assert_eq!(
            c.update.download_timeout_seconds,
            u.download_timeout_seconds
        );
        assert!(c.update.enabled);
        let cl = ClaudeSection::default();
        assert_eq!(c.claude.enabled, cl.enabled);
        assert_eq!(c.claude.cli_path, cl.cli_path);
        assert_eq!(c.claude.extra_args, cl.extra_args);
        assert_eq!(c.claude.default_timeout_seconds, cl.default_timeout_seconds);
    }

    #[test]
    fn spec_example_file_parses() {
        let text = r#"
[server]
url = "wss://rmm.example.com/ws"
api_key = "AMBER-RIVER-4821"

[metrics]
interval_seconds = 60
collect_cpu = true
collect_memory = true
collect_disk = true
collect_network = true

[watchdog]
enabled = true
check_interval_seconds = 30

[[watchdog.services]]
name = "ServiceName"
action = "restart"
max_restarts = 3
restart_cooldown_seconds = 60
"#;
        let c = Config::parse(text).unwrap();
        assert!(c.watchdog.enabled);
        assert_eq!(c.watchdog.services[0].name, "ServiceName");
        assert_eq!(c.watchdog.services[0].action, WatchdogAction::Restart);
    }

    #[test]
    fn collectors_are_parsed_from_the_collect_keys() {
        let text = format!("{MINIMAL}[metrics]\ncollect_cpu = false\ncollect_disk = false\n");
        let c = Config::parse(&text).unwrap();
        assert_eq!(
            c.metrics.collectors,
            [CollectorKind::Memory, CollectorKind::Network]
        );
        let text = format!("{MINIMAL}[metrics]\ncollect_gpu = true\n");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("collect_gpu"), "{err}");
    }

    #[test]
    fn out_of_range_metrics_interval_names_key_and_range() {
        let text = format!("{MINIMAL}[metrics]\ninterval_seconds = 5\n");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("metrics.interval_seconds"), "{err}");
        assert!(err.contains("10..=3600"), "{err}");
        let text = format!("{MINIMAL}[metrics]\ninterval_seconds = 3601\n");
        assert!(Config::parse(&text).is_err());
    }

    #[test]
    fn out_of_range_interval_names_key() {
        let text = format!("{MINIMAL}[agent]\nheartbeat_interval_seconds = 0\n");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("agent.heartbeat_interval_seconds"), "{err}");
        assert!(err.contains("1..=3600"), "{err}");
    }

    #[test]
    fn unknown_key_and_bad_mode_are_refused_with_the_name() {
        let err = Config::parse(&format!("{MINIMAL}[agent]\nheartbeat = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat"), "{err}");
        let err = Config::parse(&format!("{MINIMAL}[agent]\nmode = \"carrier-pigeon\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("carrier-pigeon"), "{err}");
    }

    #[test]
    fn bad_url_is_refused() {
        let err = Config::parse("[server]\nurl = \"ftp://x\"\napi_key = \"A-B-1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.url"), "{err}");
    }

    fn with_url(url: &str, extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!(
            "[server]\nurl = \"{url}\"\napi_key = \"A-B-1\"\n{extra}"
        ))
    }

    #[test]
    fn plain_text_to_a_remote_host_needs_allow_insecure() {
        for url in [
            "ws://example.com/ws",
            "ws://example.com:8080/ws",
            "ws://user@10.0.0.5/ws",
            "ws://[2001:db8::1]:3001/ws",
            "ws://127.0.0.1.example.com/ws",
        ] {
            let err = with_url(url, "").unwrap_err().to_string();
            assert!(
                err.contains("server.url") && err.contains("allow_insecure = true"),
                "{url}: {err}"
            );
            let ok = with_url(url, "allow_insecure = true\n").unwrap();
            assert!(ok.server.allow_insecure);
            assert!(ok.server.insecure_remote_host().is_some(), "{url}");
        }
        let legacy = with_url("http://example.com", "[agent]\nmode = \"legacy\"\n");
        assert!(legacy.is_err(), "legacy http:// to a remote host too");
        for url in [
            "wss://example.com/ws",
            "ws://127.0.0.1:3001/ws",
            "ws://127.8.9.10/ws",
            "ws://localhost:3001/ws",
            "ws://LOCALHOST/ws",
            "ws://[::1]:3001/ws",
        ] {
            let c = with_url(url, "").unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(c.server.insecure_remote_host(), None, "{url}");
        }
    }

    #[test]
    fn watchdog_check_command_needs_restart_command() {
        let text = format!(
            "{MINIMAL}[watchdog]\nenabled = true\n[[watchdog.services]]\nname = \"x\"\ncheck_command = \"true\"\n"
        );
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("watchdog.services[0].check_command"), "{err}");
    }

    #[test]
    fn claude_section_defaults_and_checks() {
        let c = Config::parse(MINIMAL).unwrap();
        assert!(!c.claude.enabled);
        assert_eq!(c.claude.cli_path, "claude");
        assert_eq!(c.claude.default_timeout_seconds, 300);
        assert!(c.claude.extra_args.is_empty());
        let with = |extra: &str| Config::parse(&format!("{MINIMAL}\n[claude]\n{extra}\n"));
        let err = with("enabled = true").unwrap_err().to_string();
        assert!(err.contains("claude.working_root"), "{err}");
        let err = with("enabled = true\nworking_root = \"/no/such/folder-xyz\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("claude.working_root") && err.contains("not an existing directory"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = with(&format!(
            "enabled = true\nworking_root = '{}'",
            file.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("claude.working_root"), "{err}");
        let c = with(&format!(
            "enabled = true\nworking_root = '{}'\nextra_args = [\"--model\", \"x\"]",
            dir.path().display()
        ))
        .unwrap();
        assert_eq!(c.claude.extra_args, ["--model", "x"]);
        // Disabled: no root needed.
        assert!(with("enabled = false").is_ok());
        for bad in [0, 601] {
            let err = with(&format!("default_timeout_seconds = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("claude.default_timeout_seconds") && err.contains("1..=600"),
                "{err}"
            );
        }
        assert!(with("default_timeout_seconds = 600").is_ok());
    }

    #[test]
    fn debug_output_redacts_agent_key() {
        let c = Config::parse(
            "[server]\nurl = \"ws://127.0.0.1:1/ws\"\napi_key = \"grmm_secretsecret\"\n",
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("secretsecret"), "{shown}");
    }
}
