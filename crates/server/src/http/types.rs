//! The REST API's request and response bodies: the contract the OpenAPI document and the
//! dashboard's generated types come from. Database rows convert into these with `From`, so a
//! column added to a table is not shown until it is added here.

use std::collections::BTreeMap;

use gururmm_protocol::{CommandStatus, CommandType, WatchdogEventKind};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Role;
use crate::db::{self, rfc3339::format as time};

/// Every error: a status and a message saying what was wrong.
#[derive(Serialize, ToSchema)]
pub struct Error {
    pub error: String,
    /// Sign-in only: the password was right and the account's second factor is needed
    /// (`totp_code` or `recovery_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_factor_required: Option<bool>,
}

fn time_opt(ms: Option<i64>) -> Option<String> {
    ms.map(time)
}

/// An empty query value (`?status=`) means "no filter", as the dashboard's forms send it.
pub(super) fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::IntoDeserializer;
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => T::deserialize(s.as_str().into_deserializer()).map(Some),
    }
}

// ---- users and sessions

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The 6-digit code of the authenticator app, for accounts with two-factor sign-in.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// Or one of the account's one-time recovery codes.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// JWT for `Authorization: Bearer`.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: User,
    /// The server requires two-factor sign-in and this account has none yet: until it sets
    /// one up, only the two-factor setup is open to it.
    pub two_factor_setup_required: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct NewUserRequest {
    #[schema(example = "technician@example.com")]
    pub email: String,
    /// At least 8 characters.
    #[schema(example = "a-long-password")]
    pub password: String,
    /// Default technician; ignored on self-registration.
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    pub created_at: String,
    /// Whether the account signs in with a second factor (TOTP).
    pub two_factor: bool,
}

impl From<db::UserRecord> for User {
    fn from(r: db::UserRecord) -> User {
        User {
            id: r.id,
            email: r.email,
            role: r.role,
            disabled: r.disabled,
            created_at: time(r.created_at),
            two_factor: r.two_factor,
        }
    }
}

/// An admin's change to a user: any of role, a new password, disabled. Every change ends all
/// of the user's sessions.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default)]
    pub role: Option<Role>,
    /// A new password (at least 8 characters).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// The signed-in user's own password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// At least 8 characters.
    pub new_password: String,
}

/// One of the signed-in user's sessions (a signed-in browser or client).
#[derive(Serialize, ToSchema)]
pub struct Session {
    pub id: String,
    /// The session this request was made with.
    pub current: bool,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub source_address: Option<String>,
}

impl Session {
    pub fn new(r: db::SessionRecord, current_id: &str) -> Session {
        Session {
            current: r.id == current_id,
            id: r.id,
            created_at: time(r.created_at),
            last_used_at: time(r.last_used_at),
            expires_at: time(r.expires_at),
            user_agent: r.user_agent,
            source_address: r.source_address,
        }
    }
}

/// Whether the server still needs its first administrator (shown on the sign-in page).
#[derive(Serialize, ToSchema)]
pub struct AuthStatus {
    pub needs_first_admin: bool,
    /// How to create one, when needed.
    pub hint: Option<String>,
}

/// The sign-in providers besides email and password.
#[derive(Serialize, ToSchema)]
pub struct AuthProviders {
    /// Single sign-on through OpenID Connect; null when not configured.
    pub oidc: Option<OidcProvider>,
}

#[derive(Serialize, ToSchema)]
pub struct OidcProvider {
    /// For the button: "Sign in with <display_name>".
    pub display_name: String,
    /// Where the button goes (a navigation, not a fetch): redirects to the provider.
    pub login_url: String,
}

/// What the provider sends back to the callback.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OidcCallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (e.g. `access_denied`), instead of a code.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The one-time code the callback put into the dashboard's address (`#/sso?code=`).
#[derive(Deserialize, ToSchema)]
pub struct OidcExchangeRequest {
    pub code: String,
}

/// A single-use ticket for `GET /api/events?ticket=`.
#[derive(Serialize, ToSchema)]
pub struct EventTicket {
    pub ticket: String,
    /// RFC 3339; a ticket lives about 30 seconds.
    pub expires_at: String,
}

// ---- clients and sites

#[derive(Deserialize, ToSchema)]
pub struct ClientBody {
    pub name: String,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub notes: Option<String>,
    pub created_at: String,
    pub site_count: i64,
    pub agent_count: i64,
}

impl From<db::ClientRecord> for Client {
    fn from(r: db::ClientRecord) -> Client {
        Client {
            id: r.id,
            name: r.name,
            notes: r.notes,
            created_at: time(r.created_at),
            site_count: r.site_count,
            agent_count: r.agent_count,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewSiteBody {
    pub client_id: String,
    pub name: String,
    #[serde(default)]
    pub notes: Option<String>,
    /// Every new machine enrolling here waits for a technician's approval (default false).
    #[serde(default)]
    pub require_approval: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct SiteBody {
    pub name: String,
    #[serde(default)]
    pub notes: Option<String>,
    /// Absent: unchanged.
    #[serde(default)]
    pub require_approval: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Site {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub name: String,
    /// The enrollment code agents use, e.g. AMBER-RIVER-4821. Masked (`*****-*****-****`)
    /// for viewers: with it, anyone can enroll a machine.
    pub site_code: String,
    #[schema(required = true)]
    pub notes: Option<String>,
    /// Every new machine enrolling here waits for a technician's approval.
    pub require_approval: bool,
    pub created_at: String,
    pub agent_count: i64,
}

/// What viewers see instead of a site code.
pub const MASKED_SITE_CODE: &str = "*****-*****-****";

impl Site {
    /// The site as `user` may see it: viewers never see the code.
    pub fn for_user(mut self, user: &super::extract::AuthUser) -> Site {
        if user.role < Role::Technician {
            self.site_code = MASKED_SITE_CODE.to_owned();
        }
        self
    }
}

impl From<db::SiteRecord> for Site {
    fn from(r: db::SiteRecord) -> Site {
        Site {
            id: r.id,
            client_id: r.client_id,
            client_name: r.client_name,
            name: r.name,
            site_code: r.site_code,
            notes: r.notes,
            require_approval: r.require_approval,
            created_at: time(r.created_at),
            agent_count: r.agent_count,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewTokenBody {
    /// Hours until the token expires: 1..=8760, default 72.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
    /// Machines it may enroll: 1..=10000, default 1.
    #[serde(default)]
    pub max_uses: Option<u32>,
}

/// An enrollment token, without its secret.
#[derive(Serialize, ToSchema)]
pub struct EnrollmentToken {
    pub id: String,
    #[schema(required = true)]
    pub site_id: Option<String>,
    /// The token's first characters, to tell tokens apart.
    pub hint: String,
    #[schema(required = true)]
    pub expires_at: Option<String>,
    pub max_uses: i64,
    pub uses: i64,
    pub revoked: bool,
    /// Not revoked, not expired, not used up.
    pub usable: bool,
    #[schema(required = true)]
    pub created_by: Option<String>,
    pub created_at: String,
}

impl From<db::TokenRecord> for EnrollmentToken {
    fn from(r: db::TokenRecord) -> EnrollmentToken {
        EnrollmentToken {
            usable: r.usable(db::now_ms()).is_ok(),
            id: r.id,
            site_id: r.site_id,
            hint: r.hint,
            expires_at: time_opt(r.expires_at),
            max_uses: r.max_uses,
            uses: r.uses,
            revoked: r.revoked_at.is_some(),
            created_by: r.created_by,
            created_at: time(r.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NewEnrollmentToken {
    pub token: EnrollmentToken,
    /// The `grmt_` token itself, shown in this answer only. Agents use it where a site code
    /// goes (`api_key` of `auth`, `site_code` of register-legacy).
    pub secret: String,
}

// ---- agents

#[derive(Serialize, ToSchema)]
pub struct Agent {
    pub id: String,
    #[schema(required = true)]
    pub site_id: Option<String>,
    #[schema(required = true)]
    pub site_name: Option<String>,
    #[schema(required = true)]
    pub client_id: Option<String>,
    #[schema(required = true)]
    pub client_name: Option<String>,
    pub hostname: String,
    #[schema(required = true)]
    pub device_id: Option<String>,
    #[schema(required = true)]
    pub os_type: Option<String>,
    #[schema(required = true)]
    pub os_version: Option<String>,
    #[schema(required = true)]
    pub arch: Option<String>,
    #[schema(required = true)]
    pub version: Option<String>,
    pub online: bool,
    pub status: db::AgentStatus,
    /// `pending`: enrolled, waiting for a technician's approval; it gets no commands.
    pub approval: db::Approval,
    /// For a pending record: the agent whose device id it enrolled with (it claims to be
    /// that agent; approving it gives it that agent's place).
    #[schema(required = true)]
    pub claims_agent_id: Option<String>,
    #[schema(required = true)]
    pub last_seen: Option<String>,
    pub created_at: String,
    /// The highest severity among the agent's open or acknowledged alerts; null when none.
    #[schema(required = true)]
    pub alert_severity: Option<crate::alerting::Severity>,
    /// What the agent said it can do when it last connected: `live_output` (it streams output
    /// while a command runs), `claude_task` (its AI task executor is enabled).
    pub capabilities: Vec<String>,
    /// The agent's newest update (only in `GET /api/agents/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<AgentUpdate>,
}

impl From<db::AgentRecord> for Agent {
    fn from(r: db::AgentRecord) -> Agent {
        Agent {
            id: r.id,
            site_id: r.site_id,
            site_name: r.site_name,
            client_id: r.client_id,
            client_name: r.client_name,
            hostname: r.hostname,
            device_id: r.device_id,
            os_type: r.os_type,
            os_version: r.os_version,
            arch: r.arch,
            version: r.version,
            online: r.online,
            status: r.status,
            approval: r.approval,
            claims_agent_id: r.claims_agent_id,
            last_seen: time_opt(r.last_seen),
            created_at: time(r.created_at),
            alert_severity: r.alert_severity,
            capabilities: r.capabilities,
            update: None,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentListQuery {
    pub client_id: Option<String>,
    pub site_id: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(inline)]
    pub status: Option<db::AgentStatus>,
    /// Part of the hostname, case-insensitive.
    pub search: Option<String>,
    /// Only approved agents, or only records waiting for approval.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(inline)]
    pub approval: Option<db::Approval>,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterAgentBody {
    pub hostname: String,
    #[serde(default)]
    pub site_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredAgent {
    pub agent: Agent,
    /// The agent's `grmm_` key, shown in this answer only.
    pub api_key: String,
}

#[derive(Deserialize, ToSchema)]
pub struct MoveBody {
    /// The target site; null unassigns the agent.
    pub site_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentStats {
    pub total: i64,
    pub online: i64,
    pub offline: i64,
    pub unassigned: i64,
    pub by_os: BTreeMap<String, i64>,
    pub by_version: BTreeMap<String, i64>,
}

impl From<db::AgentStats> for AgentStats {
    fn from(r: db::AgentStats) -> AgentStats {
        AgentStats {
            total: r.total,
            online: r.online,
            offline: r.offline,
            unassigned: r.unassigned,
            by_os: r.by_os,
            by_version: r.by_version,
        }
    }
}

/// The latest network state and metrics snapshot as the agent reported them.
#[derive(Serialize, ToSchema)]
pub struct AgentState {
    pub agent_id: String,
    #[schema(required = true)]
    pub network: Option<serde_json::Value>,
    #[schema(required = true)]
    pub metrics: Option<serde_json::Value>,
}

impl From<db::AgentState> for AgentState {
    fn from(r: db::AgentState) -> AgentState {
        AgentState {
            agent_id: r.agent_id,
            network: r.network,
            metrics: r.metrics,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WatchdogEvent {
    pub id: String,
    pub agent_id: String,
    pub service: String,
    pub event: WatchdogEventKind,
    #[schema(required = true)]
    pub message: Option<String>,
    pub timestamp: String,
}

impl From<db::WatchdogEventRecord> for WatchdogEvent {
    fn from(r: db::WatchdogEventRecord) -> WatchdogEvent {
        WatchdogEvent {
            id: r.id,
            agent_id: r.agent_id,
            service: r.service,
            event: r.event,
            message: r.message,
            timestamp: time(r.timestamp),
        }
    }
}

// ---- metrics

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// RFC 3339 or Unix seconds; default one hour before `to`.
    pub from: Option<String>,
    /// RFC 3339 or Unix seconds; default now.
    pub to: Option<String>,
}

/// One point of a series; a bucket average when the range is downsampled.
#[derive(Serialize, ToSchema)]
pub struct MetricsPoint {
    pub timestamp: String,
    #[schema(required = true)]
    pub cpu_percent: Option<f64>,
    #[schema(required = true)]
    pub memory_used_bytes: Option<i64>,
    #[schema(required = true)]
    pub memory_total_bytes: Option<i64>,
    #[schema(required = true)]
    pub disk_used_bytes: Option<i64>,
    #[schema(required = true)]
    pub disk_total_bytes: Option<i64>,
    #[schema(required = true)]
    pub network_rx_bytes: Option<i64>,
    #[schema(required = true)]
    pub network_tx_bytes: Option<i64>,
}

impl From<db::MetricsPoint> for MetricsPoint {
    fn from(r: db::MetricsPoint) -> MetricsPoint {
        MetricsPoint {
            timestamp: time(r.timestamp),
            cpu_percent: r.cpu_percent,
            memory_used_bytes: r.memory_used_bytes,
            memory_total_bytes: r.memory_total_bytes,
            disk_used_bytes: r.disk_used_bytes,
            disk_total_bytes: r.disk_total_bytes,
            network_rx_bytes: r.network_rx_bytes,
            network_tx_bytes: r.network_tx_bytes,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MetricsHistory {
    pub agent_id: String,
    pub from: String,
    pub to: String,
    pub bucket_seconds: i64,
    pub points: Vec<MetricsPoint>,
}

#[derive(Serialize, ToSchema)]
pub struct MetricsSummary {
    /// Agents with a report in the window.
    pub agents_reporting: i64,
    pub window_seconds: i64,
    #[schema(required = true)]
    pub avg_cpu_percent: Option<f64>,
    #[schema(required = true)]
    pub max_cpu_percent: Option<f64>,
    #[schema(required = true)]
    pub avg_memory_percent: Option<f64>,
    #[schema(required = true)]
    pub max_disk_percent: Option<f64>,
    pub points: i64,
    /// Agents with a live WebSocket now.
    pub agents_connected: i64,
}

impl MetricsSummary {
    pub fn new(r: db::MetricsSummary, agents_connected: usize) -> MetricsSummary {
        MetricsSummary {
            agents_reporting: r.agents_reporting,
            window_seconds: r.window_seconds,
            avg_cpu_percent: r.avg_cpu_percent,
            max_cpu_percent: r.max_cpu_percent,
            avg_memory_percent: r.avg_memory_percent,
            max_disk_percent: r.max_disk_percent,
            points: r.points,
            agents_connected: i64::try_from(agents_connected).unwrap_or(i64::MAX),
        }
    }
}

// ---- commands

#[derive(Deserialize, ToSchema)]
pub struct CommandBody {
    pub command_type: CommandType,
    pub command: String,
    /// 1..=86400; default 300.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub elevated: bool,
    /// For `script`: the interpreter to run it with.
    #[serde(default)]
    pub interpreter: Option<String>,
    /// For `claude_task`: the folder the task runs in, inside the agent's configured
    /// `working_root` (relative to it, or absolute). Absent: the root itself.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// For `claude_task`: files the task gets as context, inside the agent's `working_root`.
    #[serde(default)]
    pub context_files: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct Command {
    pub id: String,
    pub agent_id: String,
    #[schema(required = true)]
    pub hostname: Option<String>,
    pub command_type: CommandType,
    pub command: String,
    #[schema(required = true)]
    pub interpreter: Option<String>,
    /// `claude_task` only.
    #[schema(required = true)]
    pub working_directory: Option<String>,
    /// `claude_task` only.
    #[schema(required = true)]
    pub context_files: Option<Vec<String>>,
    /// The job it is part of.
    #[schema(required = true)]
    pub job_id: Option<String>,
    pub timeout_seconds: i64,
    pub elevated: bool,
    pub status: CommandStatus,
    #[schema(required = true)]
    pub exit_code: Option<i64>,
    #[schema(required = true)]
    pub stdout: Option<String>,
    #[schema(required = true)]
    pub stderr: Option<String>,
    /// Length of the whole stdout in characters (null: none yet).
    #[schema(required = true)]
    pub stdout_length: Option<i64>,
    /// Length of the whole stderr in characters (null: none yet).
    #[schema(required = true)]
    pub stderr_length: Option<i64>,
    /// True when `stdout` and `stderr` hold only their first characters (lists do that unless
    /// asked for `full_output`); the command's own endpoint has the whole text.
    pub output_preview: bool,
    /// For a running command read by its own endpoint: `stdout` and `stderr` hold the output
    /// streamed so far, and this is the highest `seq` of the pieces included (null: none, or
    /// not running). Pieces with a higher `seq` arrive as `command_output` events.
    #[schema(required = true)]
    pub live_seq: Option<i64>,
    #[schema(required = true)]
    pub duration_ms: Option<i64>,
    #[schema(required = true)]
    pub created_by: Option<String>,
    pub created_at: String,
    #[schema(required = true)]
    pub sent_at: Option<String>,
    #[schema(required = true)]
    pub completed_at: Option<String>,
}

impl From<db::CommandRecord> for Command {
    fn from(r: db::CommandRecord) -> Command {
        Command {
            id: r.id,
            agent_id: r.agent_id,
            hostname: r.hostname,
            command_type: r.command_type,
            command: r.command,
            interpreter: r.interpreter,
            working_directory: r.working_directory,
            context_files: r.context_files,
            job_id: r.job_id,
            timeout_seconds: r.timeout_seconds,
            elevated: r.elevated,
            status: r.status,
            exit_code: r.exit_code,
            stdout: r.stdout,
            stderr: r.stderr,
            stdout_length: r.stdout_length,
            stderr_length: r.stderr_length,
            output_preview: r.output_preview,
            live_seq: r.live_seq,
            duration_ms: r.duration_ms,
            created_by: r.created_by,
            created_at: time(r.created_at),
            sent_at: time_opt(r.sent_at),
            completed_at: time_opt(r.completed_at),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandListQuery {
    pub agent_id: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(inline)]
    pub status: Option<CommandStatus>,
    /// RFC 3339 or Unix seconds.
    pub since: Option<String>,
    /// RFC 3339 or Unix seconds.
    pub until: Option<String>,
    /// 1..=1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Whole outputs; by default each row's `stdout` and `stderr` are their first 500
    /// characters (`output_preview` says when cut). The command's own endpoint has it all.
    #[serde(default)]
    pub full_output: bool,
}

// ---- the rest

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A single-use ticket from `POST /api/auth/event-ticket`, for EventSource, which cannot
    /// send headers.
    pub ticket: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Readiness: whether this node can serve (for load balancers and orchestrators).
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// `ok`: the database answered.
    pub database: String,
    /// `current`: every migration this build has is applied.
    pub migrations: String,
}

/// Converts each element: `list(rows)` for `Vec<Record>` -> `Vec<ApiType>`.
pub fn list<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

/// The signed-in user's two-factor sign-in.
#[derive(Serialize, ToSchema)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    /// Whether the server requires it of every user.
    pub required: bool,
    /// Unused recovery codes left.
    pub recovery_codes_left: i64,
}

/// A secret being set up: show `otpauth_uri` as a QR code, or `secret` for typing by hand,
/// then confirm with a code from the app.
#[derive(Serialize, ToSchema)]
pub struct TwoFactorSetup {
    #[schema(
        example = "otpauth://totp/GuruRMM:tech%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=GuruRMM"
    )]
    pub otpauth_uri: String,
    /// Base32.
    pub secret: String,
}

/// A code from the authenticator app.
#[derive(Deserialize, ToSchema)]
pub struct TwoFactorCode {
    #[schema(example = "123456")]
    pub code: String,
}

/// The recovery codes, shown this once: each signs in once instead of a code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Settings administrators change at run time.
#[derive(Serialize, ToSchema)]
pub struct ServerSettings {
    /// Every user must sign in with a second factor (TOTP); until they set one up, they reach
    /// only its setup.
    pub require_two_factor: bool,
    /// The operator's config file requires it anyway (`require_two_factor`), whatever this
    /// setting says.
    pub require_two_factor_by_config: bool,
}

/// Fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
pub struct ServerSettingsUpdate {
    #[serde(default)]
    pub require_two_factor: Option<bool>,
}

// ---- releases and rollouts

/// A published agent build, served at `/downloads/<file_name>`.
#[derive(Serialize, ToSchema)]
pub struct Release {
    pub id: String,
    pub version: String,
    /// `linux` or `windows`.
    pub os: String,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    pub file_name: String,
    /// Also served under this name (what the install commands fetch) when it is the newest
    /// version of its os and arch; None otherwise.
    #[schema(required = true)]
    pub stable_file_name: Option<String>,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    pub size: i64,
    /// The release key's Ed25519 signature of the SHA-256 digest, base64.
    pub signature: String,
    pub created_at: String,
}

impl Release {
    pub fn new(r: db::ReleaseRecord, newest: bool) -> Release {
        Release {
            stable_file_name: newest.then(|| crate::rollout::stable_file_name(&r.os, &r.arch)),
            id: r.id,
            version: r.version,
            os: r.os,
            arch: r.arch,
            file_name: r.file_name,
            sha256: r.sha256,
            size: r.size,
            signature: r.signature,
            created_at: time(r.created_at),
        }
    }
}

/// Approved agents of one version, os and arch.
#[derive(Serialize, ToSchema)]
pub struct VersionCount {
    #[schema(required = true)]
    pub version: Option<String>,
    #[schema(required = true)]
    pub os: Option<String>,
    #[schema(required = true)]
    pub arch: Option<String>,
    pub agents: i64,
}

impl From<db::VersionCount> for VersionCount {
    fn from(v: db::VersionCount) -> VersionCount {
        VersionCount {
            version: v.version,
            os: v.os,
            arch: v.arch,
            agents: v.agents,
        }
    }
}

/// The target of one os/arch and who gets it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutBody {
    /// A published version of this os/arch.
    pub version: String,
    pub scope: crate::rollout::Scope,
    /// For scope `sites`.
    #[serde(default)]
    pub site_ids: Vec<String>,
    /// For scope `clients`.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// For scope `percentage`: 0..100. The same agents stay in as it grows.
    #[serde(default)]
    pub percent: u8,
    /// Paused: no new updates start (those under way go on).
    #[serde(default)]
    pub paused: bool,
}

/// Updates to the rollout's version, by state, and the agents of its os/arch.
#[derive(Serialize, ToSchema, Default)]
pub struct RolloutProgress {
    /// Approved agents of this os/arch.
    pub agents: i64,
    /// Of them, already on the target version (or newer).
    pub up_to_date: i64,
    pub pending: i64,
    pub downloading: i64,
    pub installed: i64,
    pub completed: i64,
    pub failed: i64,
    pub rolled_back: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Rollout {
    pub os: String,
    pub arch: String,
    pub version: String,
    pub scope: crate::rollout::Scope,
    pub site_ids: Vec<String>,
    pub client_ids: Vec<String>,
    pub percent: u8,
    pub paused: bool,
    pub updated_at: String,
    pub progress: RolloutProgress,
}

/// One update of one agent: `pending` (sent, or waiting for the agent to connect when
/// `sent_at` is null), `downloading`, `installed`, `completed`, `failed` or `rolled_back`.
#[derive(Serialize, ToSchema)]
pub struct AgentUpdate {
    pub id: String,
    pub agent_id: String,
    #[schema(required = true)]
    pub from_version: Option<String>,
    pub to_version: String,
    pub status: String,
    /// Why it failed or was rolled back.
    #[schema(required = true)]
    pub reason: Option<String>,
    pub allow_downgrade: bool,
    pub created_at: String,
    #[schema(required = true)]
    pub sent_at: Option<String>,
    #[schema(required = true)]
    pub updated_at: Option<String>,
    #[schema(required = true)]
    pub completed_at: Option<String>,
}

impl From<db::AgentUpdateRecord> for AgentUpdate {
    fn from(r: db::AgentUpdateRecord) -> AgentUpdate {
        AgentUpdate {
            id: r.id,
            agent_id: r.agent_id,
            from_version: r.from_version,
            to_version: r.to_version,
            status: r.status,
            reason: r.reason,
            allow_downgrade: r.allow_downgrade,
            created_at: time(r.created_at),
            sent_at: time_opt(r.sent_at),
            updated_at: time_opt(r.updated_at),
            completed_at: time_opt(r.completed_at),
        }
    }
}

/// A technician asks for a version on one agent; an older one than it runs is a downgrade,
/// which the agent installs only this way.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdateBody {
    pub version: String,
}

// ---- policies

/// A policy to create, or the whole of one to replace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedPolicyBody {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Unset settings inherit (from a less specific policy, else the agent's agent.toml).
    #[serde(default)]
    pub settings: gururmm_protocol::PolicySettings,
}

/// A named, versioned set of agent settings.
#[derive(Serialize, ToSchema)]
pub struct NamedPolicy {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub settings: gururmm_protocol::PolicySettings,
    /// Starts at 1; goes up by one with every change.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<db::PolicyRecord> for NamedPolicy {
    fn from(r: db::PolicyRecord) -> NamedPolicy {
        NamedPolicy {
            id: r.id,
            name: r.name,
            description: r.description,
            settings: r.settings,
            version: r.version,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyAssignmentBody {
    pub policy_id: String,
    pub scope: crate::scope::Scope,
}

/// A policy assigned to a scope (one policy per scope).
#[derive(Serialize, ToSchema)]
pub struct PolicyAssignment {
    pub id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub scope: crate::scope::Scope,
    pub created_at: String,
}

impl From<db::AssignmentRecord> for PolicyAssignment {
    fn from(r: db::AssignmentRecord) -> PolicyAssignment {
        PolicyAssignment {
            id: r.id,
            policy_id: r.policy_id,
            policy_name: r.policy_name,
            scope: r.scope,
            created_at: time(r.created_at),
        }
    }
}

/// Where one effective setting came from.
#[derive(Serialize, ToSchema)]
pub struct PolicySource {
    pub policy_id: String,
    pub policy_name: String,
    pub policy_version: i64,
    pub scope: crate::scope::Scope,
}

/// An agent's effective policy: the merge by precedence (agent over site over client over
/// fleet, setting by setting), where each setting came from, and what the agent made of it.
#[derive(Serialize, ToSchema)]
pub struct EffectivePolicy {
    pub agent_id: String,
    /// SHA-256 of the settings' canonical JSON, as in the `policy` message.
    pub revision: String,
    pub settings: gururmm_protocol::PolicySettings,
    /// By setting name, for each setting that is set.
    pub sources: BTreeMap<String, PolicySource>,
    /// `applied`, `refused` (see `error`) or `pending` (the agent has not answered for this
    /// revision yet).
    pub status: String,
    /// The revision the agent last answered for.
    #[schema(required = true)]
    pub reported_revision: Option<String>,
    /// Why the agent refused it.
    #[schema(required = true)]
    pub error: Option<String>,
    #[schema(required = true)]
    pub reported_at: Option<String>,
}

impl EffectivePolicy {
    pub fn new(
        agent_id: String,
        eff: crate::policy::Effective,
        status: Option<db::PolicyStatusRecord>,
    ) -> EffectivePolicy {
        let state = crate::policy::applied_state(&eff, status.as_ref());
        let error = status
            .as_ref()
            .filter(|s| !s.applied && s.revision == eff.revision)
            .and_then(|s| s.error.clone());
        EffectivePolicy {
            agent_id,
            revision: eff.revision,
            settings: eff.settings,
            sources: eff
                .sources
                .into_iter()
                .map(|(field, s)| {
                    (
                        field,
                        PolicySource {
                            policy_id: s.policy_id,
                            policy_name: s.policy_name,
                            policy_version: s.policy_version,
                            scope: s.scope,
                        },
                    )
                })
                .collect(),
            status: state.to_owned(),
            reported_revision: status.as_ref().map(|s| s.revision.clone()),
            error,
            reported_at: time_opt(status.map(|s| s.reported_at)),
        }
    }
}

// ---- the script library

/// A saved script with its current version's content.
#[derive(Serialize, ToSchema)]
pub struct Script {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    /// The current version (1 when created; each edit adds one).
    pub version: i64,
    pub content: crate::scripts::ScriptContent,
    pub created_at: String,
    pub updated_at: String,
}

impl From<db::ScriptRecord> for Script {
    fn from(r: db::ScriptRecord) -> Script {
        Script {
            id: r.id,
            name: r.name,
            description: r.description,
            category: r.category,
            version: r.version,
            content: r.content,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

/// One version of a script.
#[derive(Serialize, ToSchema)]
pub struct ScriptVersion {
    pub script_id: String,
    pub version: i64,
    pub content: crate::scripts::ScriptContent,
    /// Who saved it (an email); null for the server's starter scripts.
    #[schema(required = true)]
    pub created_by: Option<String>,
    pub created_at: String,
}

impl From<db::ScriptVersionRecord> for ScriptVersion {
    fn from(r: db::ScriptVersionRecord) -> ScriptVersion {
        ScriptVersion {
            script_id: r.script_id,
            version: r.version,
            content: r.content,
            created_by: r.created_by,
            created_at: time(r.created_at),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScriptListQuery {
    /// Part of the name, description or category (case-insensitive).
    pub search: Option<String>,
    /// Exactly this category.
    pub category: Option<String>,
}

/// A file of scripts: what export gives and import takes.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ScriptExport {
    /// `gururmm-scripts/1`.
    pub format: String,
    pub scripts: Vec<crate::scripts::ScriptDefinition>,
}

/// What an import did, by script name.
#[derive(Serialize, ToSchema, Default)]
pub struct ScriptImported {
    pub created: Vec<String>,
    /// Known names whose content differed: saved as their next version.
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

// ---- jobs

/// Which agents a job runs on, resolved when it starts. Every criterion given must hold;
/// without `agent_ids`, `site_id`, `client_id` or a filter, `all: true` is needed to mean
/// the whole fleet. Only approved agents count, and for a script written for one OS only
/// agents of that OS.
#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
pub struct JobTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `windows`, `linux`, ... (the agents' `os_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// Only agents connected now (true) or away (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    /// Part of the hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// A job: a saved script (`script_id` with `parameters`) or an ad-hoc command (`command`)
/// on a target.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct JobBody {
    /// Shown in the job list; the script's name (or the command's first line) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_id: Option<String>,
    /// Values for the script's parameters, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<BTreeMap<String, serde_json::Value>>,
    /// For an ad-hoc command: shell (default), powershell, python or script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_type: Option<CommandType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// 1..=86400; the script's default (or 300) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    pub target: JobTarget,
    /// Agents still away this long after the start get `expired` instead of the command
    /// (1..=2592000); absent: they get it whenever they come back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct JobCounts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub timed_out: i64,
    pub cancelled: i64,
    pub expired: i64,
}

#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Some agents' commands are queued or running.
    Running,
    /// Every command has ended.
    Finished,
    /// Cancelled: queued commands were cancelled; running ones finish or time out.
    Cancelled,
}

#[derive(Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub script_id: Option<String>,
    #[schema(required = true)]
    pub script_name: Option<String>,
    /// The script version this job ran.
    #[schema(required = true)]
    pub script_version: Option<i64>,
    pub command_type: CommandType,
    pub command: String,
    /// The parameters as the script received them.
    pub parameters: BTreeMap<String, String>,
    pub timeout_seconds: i64,
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
    #[schema(required = true)]
    pub expires_at: Option<String>,
    /// The job this one re-ran.
    #[schema(required = true)]
    pub rerun_of: Option<String>,
    #[schema(required = true)]
    pub schedule_id: Option<String>,
    #[schema(required = true)]
    pub created_by: Option<String>,
    pub created_at: String,
    #[schema(required = true)]
    pub cancelled_at: Option<String>,
    pub status: JobStatus,
    pub counts: JobCounts,
}

impl From<db::JobRecord> for Job {
    fn from(r: db::JobRecord) -> Job {
        let c = r.counts;
        let status = if r.cancelled_at.is_some() {
            JobStatus::Cancelled
        } else if c.finished() {
            JobStatus::Finished
        } else {
            JobStatus::Running
        };
        Job {
            id: r.id,
            name: r.name,
            script_id: r.script_id,
            script_name: r.script_name,
            script_version: r.script_version,
            command_type: CommandType::parse(&r.command_type),
            command: r.command,
            parameters: r.environment,
            timeout_seconds: r.timeout_seconds,
            target: r.target,
            expires_at: time_opt(r.expires_at),
            rerun_of: r.rerun_of,
            schedule_id: r.schedule_id,
            created_by: r.created_by,
            created_at: time(r.created_at),
            cancelled_at: time_opt(r.cancelled_at),
            status,
            counts: JobCounts {
                total: c.total,
                queued: c.queued,
                running: c.running,
                completed: c.completed,
                failed: c.failed,
                timed_out: c.timed_out,
                cancelled: c.cancelled,
                expired: c.expired,
            },
        }
    }
}

/// One agent's part of a job.
#[derive(Serialize, ToSchema)]
pub struct JobAgent {
    pub agent_id: String,
    #[schema(required = true)]
    pub hostname: Option<String>,
    pub command_id: String,
    pub status: CommandStatus,
    #[schema(required = true)]
    pub exit_code: Option<i64>,
    #[schema(required = true)]
    pub completed_at: Option<String>,
}

impl From<db::JobAgentRecord> for JobAgent {
    fn from(r: db::JobAgentRecord) -> JobAgent {
        JobAgent {
            agent_id: r.agent_id,
            hostname: r.hostname,
            command_id: r.command_id,
            status: r.status.parse().unwrap_or(CommandStatus::Failed),
            exit_code: r.exit_code,
            completed_at: time_opt(r.completed_at),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only the jobs this schedule started.
    pub schedule_id: Option<String>,
    /// 1..=1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

// ---- schedules

/// A job to run at one time (`run_at`) or on a cron expression (`cron`) in a time zone.
#[derive(Deserialize, ToSchema)]
pub struct ScheduleBody {
    pub name: String,
    pub job: JobBody,
    /// Five fields: minute hour day-of-month month day-of-week (e.g. `0 2 * * *`, 02:00 every
    /// night).
    #[serde(default)]
    pub cron: Option<String>,
    /// IANA name (e.g. `Europe/Berlin`); default `UTC`.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// A one-off: RFC 3339, in the future.
    #[serde(default)]
    pub run_at: Option<String>,
    #[serde(default)]
    pub paused: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    pub job: JobBody,
    #[schema(required = true)]
    pub cron: Option<String>,
    pub time_zone: String,
    #[schema(required = true)]
    pub run_at: Option<String>,
    pub paused: bool,
    /// When it runs next (null once a one-off has run). A paused schedule shows when it would.
    #[schema(required = true)]
    pub next_run_at: Option<String>,
    #[schema(required = true)]
    pub last_run_at: Option<String>,
    /// The job its last slot started (its runs: `GET /api/jobs?schedule_id=`).
    #[schema(required = true)]
    pub last_job_id: Option<String>,
    /// Why its last slot started no job.
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(required = true)]
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<db::ScheduleRecord> for Schedule {
    type Error = serde_json::Error;

    fn try_from(r: db::ScheduleRecord) -> Result<Schedule, serde_json::Error> {
        Ok(Schedule {
            id: r.id,
            name: r.name,
            job: serde_json::from_str(&r.job_json)?,
            cron: r.cron,
            time_zone: r.time_zone,
            run_at: time_opt(r.run_at),
            paused: r.paused,
            next_run_at: time_opt(r.next_run_at),
            last_run_at: time_opt(r.last_run_at),
            last_job_id: r.last_job_id,
            last_error: r.last_error,
            created_by: r.created_by,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        })
    }
}
