//! HTTP polling for agents that cannot keep a WebSocket. The original system's heartbeat
//! returned no commands and its results were never stored; here both work like the socket.

use axum::extract::State;
use axum::http::StatusCode;
use gururmm_protocol::legacy::{
    CommandResultAck, HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse,
};
use gururmm_protocol::{Auth, CommandResult};

use super::error::{ApiError, ApiResult};
use super::extract::{AgentKey, Json};
use crate::state::AppState;

/// Enrolls with a site code (same rules as the socket: a known device id is the same agent).
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegisterResponse>)> {
    let auth = Auth {
        api_key: req.site_code,
        device_id: req.device_id,
        hostname: req.hostname,
        os_info: req.os_info,
        version: req.version,
        previous_version: None,
    };
    if !crate::site_code::is_site_code(&crate::site_code::normalize(&auth.api_key)) {
        return Err(ApiError::BadRequest(
            "site_code must look like WORD-WORD-1234".into(),
        ));
    }
    match crate::hub::authenticate(&state, &auth).await? {
        Some(crate::hub::Authenticated {
            agent_id,
            issued_key: Some(api_key),
        }) => {
            state.hub.note_legacy_poll(&agent_id);
            Ok((
                StatusCode::CREATED,
                axum::Json(RegisterResponse { agent_id, api_key }),
            ))
        }
        _ => Err(ApiError::Unauthorized("unknown site code".into())),
    }
}

/// Marks the agent seen, stores the metrics, network state and watchdog events it brought,
/// and hands over its pending commands,
/// which become `running`.
pub async fn heartbeat(
    State(state): State<AppState>,
    agent: AgentKey,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<HeartbeatResponse>> {
    let id = agent.agent_id;
    state.hub.note_legacy_poll(&id);
    state.store.touch_agent(&id).await?;
    // The body is optional: an empty one is a bare heartbeat.
    if !body.iter().all(u8::is_ascii_whitespace) {
        let req: HeartbeatRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("heartbeat body: {e}")))?;
        if let Some(metrics) = &req.metrics {
            crate::hub::store_metrics(&state, &id, metrics).await?;
        }
        if let Some(network) = &req.network_state {
            let json = serde_json::to_string(network).map_err(|e| ApiError::Internal(e.into()))?;
            state
                .store
                .store_network_state(&id, &network.hash, &json)
                .await?;
        }
        for event in &req.watchdog_events {
            state.store.insert_watchdog_event(&id, event).await?;
        }
    }
    let mut commands = Vec::new();
    for command in state.store.pending_commands(&id).await? {
        if state.store.mark_running(&command.id).await? {
            state.events.publish(crate::events::Event::CommandUpdated {
                id: command.id.clone(),
                agent_id: id.clone(),
                status: gururmm_protocol::command_status::RUNNING.into(),
            });
            commands.push(command.to_wire());
        }
    }
    Ok(axum::Json(HeartbeatResponse { commands }))
}

pub async fn command_result(
    State(state): State<AppState>,
    agent: AgentKey,
    Json(result): Json<CommandResult>,
) -> ApiResult<axum::Json<CommandResultAck>> {
    state.hub.note_legacy_poll(&agent.agent_id);
    match crate::commands::record_result(&state, &agent.agent_id, &result).await? {
        Some(status) => Ok(axum::Json(CommandResultAck {
            id: result.id,
            status,
        })),
        None => Err(ApiError::not_found("command")),
    }
}
