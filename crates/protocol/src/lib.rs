//! The GuruRMM wire protocol, shared by the server and the agent.
//!
//! Every WebSocket message is a JSON text frame `{"type": "<snake_case>", "payload": {...}}`.
//! This crate holds serde types only. Parsing never drops a message silently: an unknown
//! `type` becomes an explicit [`Unsupported`] value, and a known type whose payload does not
//! fit becomes a [`ParseError`] that still names the type and, where it has one, the command id,
//! so the receiver can answer with a failed result.
//!
//! Timestamps on the wire are Unix seconds (integers).

pub mod claude_task;
mod command_type;
mod kinds;
pub mod legacy;
pub mod policy;
pub mod release;

pub use command_type::CommandType;
pub use kinds::{CommandStatus, UnknownName, WatchdogEventKind};
pub use policy::{Policy, PolicySettings, PolicyStatus};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Command states as stored by the server and shown by the REST API.
pub mod command_status {
    pub const PENDING: &str = "pending";
    pub const RUNNING: &str = "running";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const TIMED_OUT: &str = "timed_out";
    pub const CANCELLED: &str = "cancelled";
    pub const ALL: [&str; 6] = [PENDING, RUNNING, COMPLETED, FAILED, TIMED_OUT, CANCELLED];
}

/// Watchdog event kinds an agent reports.
pub mod watchdog_event_kind {
    pub const STOPPED: &str = "stopped";
    pub const RESTARTED: &str = "restarted";
    pub const RESTART_FAILED: &str = "restart_failed";
    pub const GAVE_UP: &str = "gave_up";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct OsInfo {
    pub os_type: String,
    pub os_version: String,
    pub arch: String,
}

/// `auth`, agent -> server: the first message on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    /// A `grmm_...` agent key, or a site code (WORD-WORD-NUMBER) to enroll.
    pub api_key: String,
    pub device_id: String,
    pub hostname: String,
    pub os_info: OsInfo,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// The revision of the policy the agent runs with; the server sends `policy` only when
    /// the agent's effective policy differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_revision: Option<String>,
    /// What this agent can do beyond the base protocol, from [`capability`]. An agent that
    /// sends none (an older build) gets only the base protocol: no `claude_task`, and it
    /// sends no `command_output`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

/// Names an agent lists in `auth.capabilities`.
pub mod capability {
    /// The agent streams `command_output` while a command runs.
    pub const LIVE_OUTPUT: &str = "live_output";
    /// The agent's AI task executor is enabled (`[claude] enabled = true`).
    pub const CLAUDE_TASK: &str = "claude_task";
}

/// `auth_response`, server -> agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Issued on site-code enrollment: the agent keeps it and uses it from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The release public key (base64, 32 bytes) updates are signed with. An agent whose
    /// config pins none keeps the first one it is given and ignores any other afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_public_key: Option<String>,
}

/// `heartbeat`, agent -> server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct DiskUsage {
    pub mount: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct NetworkCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// `metrics_report`, agent -> server. A value is `null` when its collector is disabled in the
/// agent's configuration or failed on this machine; the key is always present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct MetricsReport {
    pub timestamp: i64,
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    #[serde(default)]
    pub memory_used_bytes: Option<u64>,
    #[serde(default)]
    pub memory_total_bytes: Option<u64>,
    #[serde(default)]
    pub disks: Vec<DiskUsage>,
    #[serde(default)]
    pub network: Option<NetworkCounters>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct NetworkInterface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// `network_state`, agent -> server; sent after each connect and when `hash` changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct NetworkState {
    pub hash: String,
    pub interfaces: Vec<NetworkInterface>,
}

/// `command`, server -> agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = AgentCommand))]
pub struct Command {
    pub id: String,
    pub command_type: CommandType,
    pub command: String,
    pub timeout_seconds: u64,
    #[serde(default)]
    pub elevated: bool,
    /// `script` only: the interpreter to run the script with (else the agent's configured one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// `claude_task` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// `claude_task` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_files: Option<Vec<String>>,
}

/// `command_result`, agent -> server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CommandResult {
    pub id: String,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    /// Set by the agent when it killed the command at its timeout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

/// `command_output`, agent -> server: a piece of a running command's output, so the dashboard
/// can show it live. At most [`output_chunk::MAX_BYTES`] of text each, and no more often than
/// every [`output_chunk::INTERVAL_MS`] per command; `seq` counts from 0 per command over both
/// streams, so a gap shows a lost chunk. Best effort: chunks lost to a reconnect are not sent
/// again, because the final `command_result` carries the whole (capped) output and is the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CommandOutput {
    pub id: String,
    /// `stdout` or `stderr` (see [`output_stream`]).
    pub stream: String,
    pub seq: u64,
    pub data: String,
}

/// The streams a `command_output` names.
pub mod output_stream {
    pub const STDOUT: &str = "stdout";
    pub const STDERR: &str = "stderr";
}

/// Limits of `command_output`, kept by the agent and enforced by the server.
pub mod output_chunk {
    /// Most bytes of text (UTF-8) in one chunk.
    pub const MAX_BYTES: usize = 4000;
    /// Least time between two chunks of one command, in milliseconds.
    pub const INTERVAL_MS: u64 = 250;
}

/// `watchdog_event`, agent -> server. `event` is one of [`watchdog_event_kind`]; the server
/// reads it with [`WatchdogEvent::kind`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = AgentWatchdogEvent))]
pub struct WatchdogEvent {
    pub service: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub timestamp: i64,
}

impl WatchdogEvent {
    /// `event` parsed; a name this build does not know is kept as `Other`.
    pub fn kind(&self) -> WatchdogEventKind {
        WatchdogEventKind::parse(&self.event)
    }
}

/// `update`, server -> agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = UpdateMessage))]
pub struct Update {
    pub version: String,
    pub download_url: String,
    /// SHA-256 of the build, lowercase hex.
    pub checksum: String,
    /// Ed25519 signature of the build's 32-byte SHA-256 digest by the release key, base64
    /// (see [`release`]). An agent refuses an update without a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The server's `agent_updates` row; the agent names it in its `update_status` reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
    /// The build's size in bytes (the agent refuses a download that grows past it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A technician asked for an older version: the agent installs it although it is not newer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
}

/// `update_status`, agent -> server: how an `update` is going. `state` is one of
/// [`update_state`]; `reason` says why for `failed` and `rolled_back`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct UpdateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
    /// The version being installed.
    pub version: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The states an agent reports in `update_status`.
pub mod update_state {
    /// The download started.
    pub const DOWNLOADING: &str = "downloading";
    /// Verified and swapped in; the new build is being started.
    pub const INSTALLED: &str = "installed";
    /// Nothing was replaced (bad checksum or signature, download failed, disk full, ...).
    pub const FAILED: &str = "failed";
    /// The new build did not come up; the previous one was put back.
    pub const ROLLED_BACK: &str = "rolled_back";
    pub const ALL: [&str; 4] = [DOWNLOADING, INSTALLED, FAILED, ROLLED_BACK];
}

/// `ping`, server -> agent: an empty object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ping {}

/// `result_ack`, server -> agent: the result of command `id` is stored (or was already). A
/// WebSocket agent keeps each result in its outbox until this arrives, and sends it again
/// after a reconnect or when no ack came for a while, so a result is never lost to a server
/// that could not store it (a database outage, a restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultAck {
    pub id: String,
}

/// A message whose `type` this build does not know. Kept whole so it can be logged or answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    pub message_type: String,
    pub payload: Value,
}

/// Why a frame could not be parsed, with what could still be read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The `type` field, when the frame had one.
    pub message_type: Option<String>,
    /// `payload.id` when present: for a `command` or `command_result` this is the command id,
    /// so the receiver can turn the failure into a failed result instead of dropping it.
    pub command_id: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message_type {
            Some(t) => write!(f, "malformed '{t}' message: {}", self.reason),
            None => write!(f, "malformed message: {}", self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    message_type: String,
    #[serde(default)]
    payload: Value,
}

fn split_envelope(text: &str) -> Result<RawEnvelope, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError {
        message_type: None,
        command_id: None,
        reason: format!("not JSON: {e}"),
    })?;
    let command_id = value
        .get("payload")
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let message_type = value.get("type").and_then(Value::as_str).map(str::to_owned);
    serde_json::from_value(value).map_err(|e| ParseError {
        message_type,
        command_id,
        reason: format!("not a message envelope: {e}"),
    })
}

fn parse_payload<T: serde::de::DeserializeOwned>(
    message_type: &str,
    payload: Value,
) -> Result<T, ParseError> {
    let command_id = payload.get("id").and_then(Value::as_str).map(str::to_owned);
    // A message without fields may come with no payload at all.
    let payload = if payload.is_null() {
        Value::Object(Default::default())
    } else {
        payload
    };
    serde_json::from_value(payload).map_err(|e| ParseError {
        message_type: Some(message_type.to_owned()),
        command_id,
        reason: e.to_string(),
    })
}

/// Declares a message enum whose variants map one-to-one to wire `type` names, plus
/// `Unsupported` for any other name.
macro_rules! message_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident($payload:ty) = $tag:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $($variant($payload),)+
            Unsupported(Unsupported),
        }

        impl $name {
            /// Every wire `type` name of this direction.
            pub const TYPES: &'static [&'static str] = &[$($tag),+];

            /// The wire `type` name of this message.
            pub fn message_type(&self) -> &str {
                match self {
                    $(Self::$variant(_) => $tag,)+
                    Self::Unsupported(u) => &u.message_type,
                }
            }

            /// Parses one text frame.
            pub fn from_json(text: &str) -> Result<Self, ParseError> {
                let raw = split_envelope(text)?;
                Self::from_envelope(raw.message_type, raw.payload)
            }

            fn from_envelope(message_type: String, payload: Value) -> Result<Self, ParseError> {
                match message_type.as_str() {
                    $($tag => parse_payload(&message_type, payload).map(Self::$variant),)+
                    _ => Ok(Self::Unsupported(Unsupported { message_type, payload })),
                }
            }

            /// The `{"type", "payload"}` envelope as a JSON value.
            pub fn to_value(&self) -> Value {
                let payload = match self {
                    $(Self::$variant(p) => serde_json::to_value(p).expect("protocol types always serialize"),)+
                    Self::Unsupported(u) => u.payload.clone(),
                };
                serde_json::json!({ "type": self.message_type(), "payload": payload })
            }

            /// The text frame for this message.
            pub fn to_json(&self) -> String {
                self.to_value().to_string()
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.to_value().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = RawEnvelope::deserialize(deserializer)?;
                Self::from_envelope(raw.message_type, raw.payload).map_err(serde::de::Error::custom)
            }
        }

        $(impl From<$payload> for $name {
            fn from(p: $payload) -> Self {
                Self::$variant(p)
            }
        })+
    };
}

message_enum! {
    /// Messages an agent sends to the server.
    AgentMessage {
        Auth(Auth) = "auth",
        Heartbeat(Heartbeat) = "heartbeat",
        MetricsReport(MetricsReport) = "metrics_report",
        NetworkState(NetworkState) = "network_state",
        CommandResult(CommandResult) = "command_result",
        CommandOutput(CommandOutput) = "command_output",
        WatchdogEvent(WatchdogEvent) = "watchdog_event",
        UpdateStatus(UpdateStatus) = "update_status",
        PolicyStatus(PolicyStatus) = "policy_status",
    }
}

message_enum! {
    /// Messages the server sends to an agent.
    ServerMessage {
        AuthResponse(AuthResponse) = "auth_response",
        Command(Command) = "command",
        Update(Update) = "update",
        Ping(Ping) = "ping",
        ResultAck(ResultAck) = "result_ack",
        Policy(Policy) = "policy",
    }
}

/// The path of the JSON fixtures shipped with this crate, one per message and per command
/// type. The server's and the agent's tests read them too.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Reads one fixture by file stem (`"command_shell"` reads `fixtures/command_shell.json`).
pub fn fixture(name: &str) -> String {
    let path = fixtures_dir().join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
