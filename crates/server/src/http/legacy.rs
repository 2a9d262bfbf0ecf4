//! HTTP polling for agents that cannot keep a WebSocket: a thin adapter over `session`, like
//! the WebSocket hub. The original system's heartbeat returned no commands and its results
//! were never stored; here both work like the socket, through the same session code.

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use gururmm_protocol::legacy::{
    CommandResultAck, HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse,
};
use gururmm_protocol::{AgentMessage, Auth, CommandResult, Heartbeat};

use super::error::{ApiError, ApiResult};
use super::extract::{AgentJson, AgentKey};
use crate::session::{self, AgentSession, Authenticated, Refused};
use crate::state::AppState;

/// A poll makes a legacy agent online: at once on this node, and for the others with the
/// next presence batch.
fn polled(state: &AppState, agent_id: &str) {
    state.hub.note_legacy_poll(agent_id);
    state.cluster.presence.polled(agent_id);
}

/// Enrolls with a site code or an enrollment token in `site_code` (same rules as the socket:
/// a known device id gets a new record awaiting approval, never the existing agent).
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    AgentJson(req): AgentJson<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegisterResponse>)> {
    let auth = Auth {
        api_key: req.site_code,
        device_id: req.device_id,
        hostname: req.hostname,
        os_info: req.os_info,
        version: req.version,
        previous_version: None,
        policy_revision: None,
        capabilities: Vec::new(),
    };
    let presented = auth.api_key.trim();
    if !presented.starts_with(session::enroll::TOKEN_PREFIX)
        && !crate::site_code::is_site_code(&crate::site_code::normalize(presented))
    {
        return Err(ApiError::BadRequest(
            "site_code must look like WORD-WORD-1234 or be a grmt_ enrollment token".into(),
        ));
    }
    match session::authenticate(&state, &auth, peer.ip()).await? {
        Ok(Authenticated {
            agent_id,
            issued_key: Some(api_key),
            ..
        }) => {
            polled(&state, &agent_id);
            Ok((
                StatusCode::CREATED,
                axum::Json(RegisterResponse { agent_id, api_key }),
            ))
        }
        Ok(_) => Err(ApiError::Unauthorized("unknown site code".into())),
        Err(Refused::RateLimited(wait)) => Err(wait.into()),
        Err(Refused::Unknown(message)) => Err(ApiError::Unauthorized(message)),
    }
}

/// A poll: the agent is seen, what it brought (metrics, network state, watchdog events) is
/// ingested, and its pending commands go out in the answer, now `running`.
pub async fn heartbeat(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    agent: AgentKey,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<HeartbeatResponse>> {
    let id = agent.agent_id;
    polled(&state, &id);
    let session = AgentSession::new(&state, &id);
    // The body is optional: an empty one is a bare heartbeat.
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        HeartbeatRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("heartbeat body: {e}")))?
    };
    let mut reports = vec![AgentMessage::Heartbeat(Heartbeat {
        timestamp: req.timestamp,
    })];
    reports.extend(req.network_state.map(AgentMessage::NetworkState));
    reports.extend(
        req.watchdog_events
            .into_iter()
            .map(AgentMessage::WatchdogEvent),
    );
    reports.extend(
        req.update_status
            .into_iter()
            .map(AgentMessage::UpdateStatus),
    );
    reports.extend(req.policy_status.map(AgentMessage::PolicyStatus));
    for report in reports {
        session.ingest(report).await?;
    }
    if let Some(metrics) = req.metrics {
        session.store_metrics_now(metrics).await?;
    }
    let mut commands = Vec::new();
    session.hand_out(&mut commands).await;
    // The version it runs now completes an update to it; then, whether it gets one.
    let update = match req.version.as_deref() {
        Some(version) => {
            let mut version = version.to_owned();
            crate::session::sanitize::bounded(&mut version, 64);
            state.store.note_agent_version(&id, &version).await?;
            let base = crate::rollout::DownloadBase::from_request(&state, &headers);
            crate::rollout::on_connect(&state, &id, &version, None, &base).await?
        }
        None => None,
    };
    // Its effective policy when the revision it names (none: an older agent) differs.
    let policy = crate::policy::effective_for(&state, &id)
        .await?
        .and_then(|eff| eff.to_send(req.policy_revision.as_deref()));
    Ok(axum::Json(HeartbeatResponse {
        commands,
        update,
        policy,
    }))
}

pub async fn command_result(
    State(state): State<AppState>,
    agent: AgentKey,
    AgentJson(result): AgentJson<CommandResult>,
) -> ApiResult<axum::Json<CommandResultAck>> {
    polled(&state, &agent.agent_id);
    let session = AgentSession::new(&state, &agent.agent_id);
    let id = result.id.clone();
    match session.record_result(result).await? {
        Some(status) => Ok(axum::Json(CommandResultAck { id, status })),
        None => Err(ApiError::not_found("command")),
    }
}
