//! Bodies of the legacy HTTP polling endpoints (`/api/agent/...`), used by agents that cannot
//! keep a WebSocket (for example the Windows 7 / Server 2008 R2 build). Requests after
//! enrollment carry the agent's key as `Authorization: Bearer grmm_...`.

use serde::{Deserialize, Serialize};

use crate::{
    Command, MetricsReport, NetworkState, OsInfo, Policy, PolicyStatus, Update, UpdateStatus,
    WatchdogEvent,
};

/// `POST /api/agent/register-legacy`: enroll with a site code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    pub site_code: String,
    pub device_id: String,
    pub hostname: String,
    pub os_info: OsInfo,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RegisterResponse {
    pub agent_id: String,
    /// The agent's own `grmm_` key: keep it, it is shown once.
    pub api_key: String,
}

/// `POST /api/agent/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct HeartbeatRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsReport>,
    /// Sent after registering and whenever its hash changes, as on the WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_state: Option<NetworkState>,
    /// Watchdog events since the last heartbeat the server accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watchdog_events: Vec<WatchdogEvent>,
    /// How updates are going (`update_status` payloads), since the last accepted heartbeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_status: Vec<UpdateStatus>,
    /// The revision of the policy the agent runs with (as in `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_revision: Option<String>,
    /// The answer to the last `policy` (as the WebSocket's `policy_status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_status: Option<PolicyStatus>,
}

/// The answer to a heartbeat: the commands that were pending, now marked running, and an
/// `update` when the agent's rollout has one for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct HeartbeatResponse {
    pub commands: Vec<Command>,
    /// A build to install, as the WebSocket's `update` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    /// The agent's effective policy, when its `policy_revision` differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

/// `POST /api/agent/command-result` takes a [`crate::CommandResult`] and answers this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CommandResultAck {
    pub id: String,
    pub status: String,
}
